package studentpage

// words are the page's and the confirmation email's texts in each
// language; a key missing in a language falls back to English.
var words = map[string]map[string]string{
	"en": {
		"title":                     "Your migration tasks",
		"intro":                     "This page is for you alone: it shows what the university's records say you still have to do, and lets you tell the International Office what has changed. Do not share its address.",
		"passport":                  "Passport",
		"lang":                      "Language",
		"lang.change":               "Change",
		"open":                      "What you still have to do",
		"none":                      "The university's records show nothing open for you.",
		"due":                       "Deadline",
		"done.button":               "I have done this",
		"done.reported":             "You reported this done on %s. The office is checking it.",
		"tell":                      "Tell the office",
		"lost.title":                "I have lost my documents",
		"lost.text":                 "Your passport, registration certificate or student ID card is lost or stolen.",
		"lost.button":               "Report lost documents",
		"address.title":             "I have moved",
		"address.text":              "You now live at another address. The new address must be registered.",
		"address.date":              "Date of the move",
		"address.button":            "Report the move",
		"status.title":              "My status has changed",
		"status.text":               "You have received a new status in Kazakhstan.",
		"status.label":              "New status",
		"status.rvp":                "Temporary residence permit",
		"status.residence-permit":   "Residence permit",
		"status.citizenship":        "Citizenship of Kazakhstan",
		"status.button":             "Report the new status",
		"office":                    "International Office",
		"office.address":            "Address",
		"office.hours":              "Hours",
		"office.phone":              "Phone",
		"office.email":              "Email",
		"ok.done":                   "Thank you: the office has your report that it is done, and will check it. We have sent you a confirmation by email.",
		"ok.lost-documents":         "Thank you: the office has your report of lost documents. Come to the International Office as soon as you can. We have sent you a confirmation by email.",
		"ok.address-changed":        "Thank you: the office has your report of the move. Your new address must be registered. We have sent you a confirmation by email.",
		"ok.status-changed":         "Thank you: the office has your report of the new status. We have sent you a confirmation by email.",
		"err.date":                  "Please give the date of the move: today or a day in the last 60 days.",
		"err.status":                "Please choose the new status.",
		"err.obligation":            "This task is no longer open.",
		"refused.title":             "This form has expired",
		"refused.text":              "Nothing was recorded. Open the link from your email again and send the form once more.",
		"limited.title":             "Too many requests",
		"limited.text":              "Please wait a minute and try again.",
		"mail.subject":              "We have received your report",
		"mail.hello":                "Hello,",
		"mail.intro":                "The International Office has received your report of %s:",
		"mail.kind.done":            "done: %s",
		"mail.kind.lost-documents":  "lost documents",
		"mail.kind.address-changed": "a move on %s",
		"mail.kind.status-changed":  "a new status: %s",
		"mail.next":                 "The office will check it. If you did not send this report, contact the office.",
		"mail.footnote":             "This message was sent automatically.",
	},
	"ru": {
		"title":                     "Ваши миграционные задачи",
		"intro":                     "Эта страница только для вас: на ней видно, что по данным университета вам ещё нужно сделать, и здесь можно сообщить Международному отделу, что изменилось. Не передавайте её адрес другим.",
		"passport":                  "Паспорт",
		"lang":                      "Язык",
		"lang.change":               "Сменить",
		"open":                      "Что вам ещё нужно сделать",
		"none":                      "По данным университета у вас нет открытых задач.",
		"due":                       "Срок",
		"done.button":               "Я это сделал(а)",
		"done.reported":             "Вы сообщили, что сделали это, %s. Отдел проверяет.",
		"tell":                      "Сообщить отделу",
		"lost.title":                "Я потерял(а) документы",
		"lost.text":                 "Ваш паспорт, справка о регистрации или студенческий билет утеряны или украдены.",
		"lost.button":               "Сообщить о потере документов",
		"address.title":             "Я переехал(а)",
		"address.text":              "Вы теперь живёте по другому адресу. Новый адрес нужно зарегистрировать.",
		"address.date":              "Дата переезда",
		"address.button":            "Сообщить о переезде",
		"status.title":              "Мой статус изменился",
		"status.text":               "Вы получили новый статус в Казахстане.",
		"status.label":              "Новый статус",
		"status.rvp":                "Разрешение на временное проживание",
		"status.residence-permit":   "Вид на жительство",
		"status.citizenship":        "Гражданство Казахстана",
		"status.button":             "Сообщить о новом статусе",
		"office":                    "Международный отдел",
		"office.address":            "Адрес",
		"office.hours":              "Часы работы",
		"office.phone":              "Телефон",
		"office.email":              "Эл. почта",
		"ok.done":                   "Спасибо: отдел получил ваше сообщение о выполнении и проверит его. Мы отправили вам подтверждение по электронной почте.",
		"ok.lost-documents":         "Спасибо: отдел получил ваше сообщение о потере документов. Приходите в Международный отдел как можно скорее. Мы отправили вам подтверждение по электронной почте.",
		"ok.address-changed":        "Спасибо: отдел получил ваше сообщение о переезде. Новый адрес нужно зарегистрировать. Мы отправили вам подтверждение по электронной почте.",
		"ok.status-changed":         "Спасибо: отдел получил ваше сообщение о новом статусе. Мы отправили вам подтверждение по электронной почте.",
		"err.date":                  "Укажите дату переезда: сегодня или день в последние 60 дней.",
		"err.status":                "Выберите новый статус.",
		"err.obligation":            "Эта задача уже закрыта.",
		"refused.title":             "Срок действия формы истёк",
		"refused.text":              "Ничего не записано. Откройте ссылку из письма ещё раз и отправьте форму снова.",
		"limited.title":             "Слишком много запросов",
		"limited.text":              "Подождите минуту и попробуйте снова.",
		"mail.subject":              "Мы получили ваше сообщение",
		"mail.hello":                "Здравствуйте!",
		"mail.intro":                "Международный отдел получил ваше сообщение от %s:",
		"mail.kind.done":            "выполнено: %s",
		"mail.kind.lost-documents":  "потеря документов",
		"mail.kind.address-changed": "переезд %s",
		"mail.kind.status-changed":  "новый статус: %s",
		"mail.next":                 "Отдел проверит его. Если вы не отправляли это сообщение, свяжитесь с отделом.",
		"mail.footnote":             "Это письмо отправлено автоматически.",
	},
	"kk": {
		"title":                     "Сіздің көші-қон міндеттеріңіз",
		"intro":                     "Бұл бет тек сізге арналған: онда университет деректері бойынша сізге әлі не істеу керегі көрсетіледі, және мұнда Халықаралық бөлімге не өзгергенін хабарлауға болады. Оның мекенжайын басқаларға бермеңіз.",
		"passport":                  "Паспорт",
		"lang":                      "Тіл",
		"lang.change":               "Ауыстыру",
		"open":                      "Сізге әлі не істеу керек",
		"none":                      "Университет деректері бойынша сізде ашық міндет жоқ.",
		"due":                       "Мерзімі",
		"done.button":               "Мен мұны орындадым",
		"done.reported":             "Сіз мұны %s орындағаныңызды хабарладыңыз. Бөлім оны тексеріп жатыр.",
		"tell":                      "Бөлімге хабарлау",
		"lost.title":                "Мен құжаттарымды жоғалттым",
		"lost.text":                 "Паспортыңыз, тіркеу анықтамаңыз немесе студенттік билетіңіз жоғалды немесе ұрланды.",
		"lost.button":               "Құжаттардың жоғалғанын хабарлау",
		"address.title":             "Мен көшіп кеттім",
		"address.text":              "Сіз енді басқа мекенжайда тұрасыз. Жаңа мекенжайды тіркеу керек.",
		"address.date":              "Көшкен күні",
		"address.button":            "Көшкенімді хабарлау",
		"status.title":              "Менің мәртебем өзгерді",
		"status.text":               "Сіз Қазақстанда жаңа мәртебе алдыңыз.",
		"status.label":              "Жаңа мәртебе",
		"status.rvp":                "Уақытша тұруға рұқсат",
		"status.residence-permit":   "Тұруға ықтиярхат",
		"status.citizenship":        "Қазақстан азаматтығы",
		"status.button":             "Жаңа мәртебені хабарлау",
		"office":                    "Халықаралық бөлім",
		"office.address":            "Мекенжайы",
		"office.hours":              "Жұмыс уақыты",
		"office.phone":              "Телефон",
		"office.email":              "Электрондық пошта",
		"ok.done":                   "Рақмет: бөлім орындалғаны туралы хабарыңызды алды және оны тексереді. Біз сізге электрондық пошта арқылы растау жібердік.",
		"ok.lost-documents":         "Рақмет: бөлім құжаттардың жоғалғаны туралы хабарыңызды алды. Халықаралық бөлімге мүмкіндігінше тез келіңіз. Біз сізге электрондық пошта арқылы растау жібердік.",
		"ok.address-changed":        "Рақмет: бөлім көшкеніңіз туралы хабарыңызды алды. Жаңа мекенжайды тіркеу керек. Біз сізге электрондық пошта арқылы растау жібердік.",
		"ok.status-changed":         "Рақмет: бөлім жаңа мәртебеңіз туралы хабарыңызды алды. Біз сізге электрондық пошта арқылы растау жібердік.",
		"err.date":                  "Көшкен күнді көрсетіңіз: бүгін немесе соңғы 60 күннің бірі болуы керек.",
		"err.status":                "Жаңа мәртебені таңдаңыз.",
		"err.obligation":            "Бұл міндет енді ашық емес.",
		"refused.title":             "Форманың мерзімі өтті",
		"refused.text":              "Ештеңе жазылмады. Хаттағы сілтемені қайта ашып, форманы қайта жіберіңіз.",
		"limited.title":             "Сұраулар тым көп",
		"limited.text":              "Бір минут күтіп, қайталап көріңіз.",
		"mail.subject":              "Біз хабарыңызды алдық",
		"mail.hello":                "Сәлеметсіз бе!",
		"mail.intro":                "Халықаралық бөлім %s күнгі хабарыңызды алды:",
		"mail.kind.done":            "орындалды: %s",
		"mail.kind.lost-documents":  "құжаттар жоғалды",
		"mail.kind.address-changed": "%s күні көшу",
		"mail.kind.status-changed":  "жаңа мәртебе: %s",
		"mail.next":                 "Бөлім оны тексереді. Егер сіз бұл хабарды жібермесеңіз, бөлімге хабарласыңыз.",
		"mail.footnote":             "Бұл хат автоматты түрде жіберілді.",
	},
}

// word is key in lang, else in English.
func word(lang, key string) string {
	if w, ok := words[lang][key]; ok {
		return w
	}
	return words["en"][key]
}

// invalidPage is the one answer to every link that is not valid, in the
// three languages: the same bytes whatever was wrong with it.
const invalidPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not valid</title>
<link rel="stylesheet" href="/s/page.css">
</head>
<body>
<main>
<h1>Link not valid</h1>
<p>This link is not valid or has expired. Open the link in the latest email from the International Office, or contact the office.</p>
<h2 lang="ru">Ссылка недействительна</h2>
<p lang="ru">Эта ссылка недействительна или устарела. Откройте ссылку из последнего письма Международного отдела или свяжитесь с отделом.</p>
<h2 lang="kk">Сілтеме жарамсыз</h2>
<p lang="kk">Бұл сілтеме жарамсыз немесе мерзімі өткен. Халықаралық бөлімнің соңғы хатындағы сілтемені ашыңыз немесе бөлімге хабарласыңыз.</p>
</main>
</body>
</html>
`
