package console

// The words of what the console shows of reach: the contacts that cannot
// receive and the statuses a bounce or a receipt gives a notice; key →
// {en, ru, kk}.
var reachWords = map[string][3]string{
	"page.student.unreachable": {"Contacts we cannot reach", "Контакты, на которые не доходят уведомления", "Хабарламалар жетпейтін байланыстар"},
	"page.unreachable.help": {
		"A bounce or the SMS provider's receipt said these never arrive. No notice goes to them while the SIS holds them; where the other channel works, the student's notices go by it instead. Reach the student another way and correct the contact in the SIS: a new one is used from the next night.",
		"Возврат письма или отчёт SMS-провайдера показал, что сюда уведомления не доходят. Пока SIS хранит этот контакт, уведомления на него не отправляются; где работает другой канал, уведомления студенту идут по нему. Свяжитесь со студентом иначе и исправьте контакт в SIS: новый используется со следующей ночи.",
		"Қайтып келген хат немесе SMS-провайдердің есебі бұл байланысқа хабарламалар жетпейтінін көрсетті. SIS осы байланысты сақтап тұрғанда, оған хабарламалар жіберілмейді; басқа арна жұмыс істесе, студентке хабарламалар сол арқылы барады. Студентпен басқа жолмен байланысып, SIS-тегі байланысты түзетіңіз: жаңасы келесі түннен бастап қолданылады.",
	},
	"page.col.contact":      {"Contact", "Контакт", "Байланыс"},
	"page.flag.unreachable": {"unreachable", "не доходит", "жетпейді"},
	"page.status.delivered": {"delivered", "доставлено", "жеткізілді"},
	"page.status.bounced":   {"bounced", "не доставлено", "жеткізілмеді"},
}

func init() {
	for i, lang := range []string{"en", "ru", "kk"} {
		m := make(map[string]string, len(reachWords))
		for k, v := range reachWords {
			m[k] = v[i]
		}
		addMessages(lang, m)
	}
}
