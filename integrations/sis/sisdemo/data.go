package sisdemo

// The fixed tables the generator draws from: the countries that send
// students to Kazakhstan, with names, languages, phone and passport formats,
// and the university's faculties.

// country is one citizenship with everything the generator draws for it.
type country struct {
	code   string // ISO 3166-1 alpha-2
	weight int    // relative share of the roster
	regime string // visa_regime of its citizens
	// male and female given names and family names, in Latin letters as
	// printed in the passport.
	male, female, family []string
	// femSuffix: family names in -ov/-ev/-in take an -a for women.
	femSuffix bool
	// preferred_language weights: ru, en, kk, NULL.
	lang [4]int
	// home mobile numbers: country code, the leading digits of a mobile
	// number, random digits up to natLen digits after the country code.
	cc       string
	mobile   []string
	natLen   int
	passport string // passport number prefix; passDigits digits follow
	passDigs int
}

// The weights follow the rough order of the countries that send students to
// Kazakhstan: Uzbekistan first by far, then India, China, Kyrgyzstan,
// Turkmenistan, Russia, Tajikistan, Pakistan and the rest.
//
// Regimes: Russia and Kyrgyzstan are in the Eurasian Economic Union; the
// CIS neighbours and Mongolia, Turkey and Korea enter without a visa; the
// distant countries (and Turkmenistan, which keeps a visa regime) study on
// a student visa.
var countries = []country{
	{
		code: "UZ", weight: 28, regime: "visa_free", femSuffix: true,
		male:   []string{"Aziz", "Bekzod", "Jasur", "Otabek", "Sardor", "Shoxrux", "Doniyor", "Jahongir", "Ulug'bek", "Sherzod", "Timur", "Akmal", "O'tkir", "Sanjar", "Islom", "Javohir"},
		female: []string{"Dilnoza", "Madina", "Nilufar", "Shahnoza", "Gulnora", "Zarina", "Malika", "Sevara", "Mohira", "Feruza", "Oydin", "Munisa", "Kamola", "Dildora"},
		family: []string{"Yusupov", "Abdullaev", "Rahimov", "Karimov", "Tursunov", "Ismoilov", "Nazarov", "Xoliqov", "Sobirov", "Mirzaev", "Qodirov", "G'aniyev", "Toshmatov", "Ergashev", "Umarov", "Azimov"},
		lang:   [4]int{70, 15, 5, 10},
		cc:     "+998", mobile: []string{"90", "91", "93", "94", "97", "99"}, natLen: 9,
		passport: "FA", passDigs: 7,
	},
	{
		code: "IN", weight: 12, regime: "visa",
		male:   []string{"Rahul", "Arjun", "Aditya", "Rohan", "Vikram", "Aman", "Karthik", "Siddharth", "Harsh", "Pranav", "Abhishek", "Nikhil"},
		female: []string{"Priya", "Ananya", "Sneha", "Pooja", "Divya", "Kavya", "Neha", "Shreya", "Aishwarya", "Riya", "Meera", "Tanvi"},
		family: []string{"Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Nair", "Iyer", "Verma", "Joshi", "Das", "Mehta", "Rao", "Menon"},
		lang:   [4]int{2, 90, 0, 8},
		cc:     "+91", mobile: []string{"98", "99", "97", "94"}, natLen: 10,
		passport: "N", passDigs: 7,
	},
	{
		code: "CN", weight: 10, regime: "visa",
		male:   []string{"Wei", "Hao", "Lei", "Jun", "Tao", "Yang", "Bo", "Zhiwei", "Haoran", "Yuxuan", "Zihan", "Jiahao"},
		female: []string{"Jing", "Li", "Xin", "Yan", "Min", "Fang", "Mei", "Xiaoyu", "Yuting", "Shuang", "Yiting", "Xinyi"},
		family: []string{"Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo"},
		lang:   [4]int{15, 60, 15, 10}, // ethnic Kazakhs from Xinjiang prefer kk
		cc:     "+86", mobile: []string{"13", "18", "150", "151", "158", "159", "198", "199"}, natLen: 11,
		passport: "E", passDigs: 8,
	},
	{
		code: "KG", weight: 8, regime: "eaeu", femSuffix: true,
		male:   []string{"Aibek", "Bakyt", "Nurlan", "Temirlan", "Azamat", "Eldiyar", "Kubanychbek", "Daniyar", "Erlan", "Ulan", "Adilet", "Bektur"},
		female: []string{"Aizada", "Aidana", "Begimai", "Aizhan", "Cholpon", "Jyldyz", "Nazira", "Saikal", "Aselia", "Meerim", "Kanykei", "Altynai"},
		family: []string{"Asanov", "Bakirov", "Toktogulov", "Sadyrov", "Zhumabaev", "Omurbekov", "Abdyldaev", "Mamytov", "Usenov", "Kasymov", "Japarov", "Sultanbekov"},
		lang:   [4]int{80, 5, 7, 8},
		cc:     "+996", mobile: []string{"70", "55", "77", "50"}, natLen: 9,
		passport: "AC", passDigs: 7,
	},
	{
		code: "TM", weight: 7, regime: "visa", femSuffix: true,
		male:   []string{"Myrat", "Dovlet", "Batyr", "Maksat", "Rustem", "Gurban", "Atamyrat", "Kerim", "Shatlyk", "Yhlas", "Serdar", "Merdan"},
		female: []string{"Aylar", "Maya", "Jeren", "Aynur", "Bahar", "Gulshat", "Selbi", "Mahri", "Enejan", "Ogulnabat", "Leyli", "Ayna"},
		family: []string{"Annayev", "Orazov", "Berdiyev", "Charyyev", "Atayev", "Hojayev", "Muradov", "Gurbanov", "Nurmuhammedov", "Amanov", "Saparov", "Rejepov"},
		lang:   [4]int{70, 20, 0, 10},
		cc:     "+993", mobile: []string{"61", "62", "63", "64", "65", "71"}, natLen: 8,
		passport: "A", passDigs: 7,
	},
	{
		code: "RU", weight: 7, regime: "eaeu", femSuffix: true,
		male:   []string{"Aleksandr", "Dmitry", "Maksim", "Ivan", "Artem", "Nikita", "Mikhail", "Kirill", "Egor", "Andrey", "Timofey", "Roman"},
		female: []string{"Anastasia", "Maria", "Daria", "Polina", "Anna", "Elizaveta", "Ekaterina", "Sofia", "Victoria", "Ksenia", "Alina", "Valeria"},
		family: []string{"Ivanov", "Smirnov", "Kuznetsov", "Popov", "Vasiliev", "Petrov", "Sokolov", "Mikhailov", "Novikov", "Fedorov", "Morozov", "Volkov", "Ilyin", "Lebedev"},
		lang:   [4]int{85, 5, 2, 8},
		cc:     "+7", mobile: []string{"91", "92", "98", "90"}, natLen: 10,
		passport: "75", passDigs: 7,
	},
	{
		code: "TJ", weight: 6, regime: "visa_free", femSuffix: true,
		male:   []string{"Firdavs", "Rustam", "Farrukh", "Shohrukh", "Behruz", "Davlat", "Siyovush", "Faridun", "Jamshed", "Mehrubon", "Suhrob", "Manuchehr"},
		female: []string{"Nigina", "Parvina", "Zarina", "Firuza", "Manizha", "Tahmina", "Sitora", "Mehrangez", "Farangis", "Dilorom", "Shabnam", "Madina"},
		family: []string{"Rahmonov", "Saidov", "Nazarov", "Sharipov", "Karimov", "Khojaev", "Qurbonov", "Safarov", "Davlatov", "Boboev", "Rahmonzoda", "Saidzoda"},
		lang:   [4]int{70, 15, 3, 12},
		cc:     "+992", mobile: []string{"90", "91", "92", "93", "98"}, natLen: 9,
		passport: "4", passDigs: 8,
	},
	{
		code: "PK", weight: 5, regime: "visa",
		male:   []string{"Muhammad", "Ahmed", "Ali", "Hassan", "Usman", "Bilal", "Hamza", "Zain", "Fahad", "Saad", "Umar", "Talha"},
		female: []string{"Ayesha", "Fatima", "Zainab", "Hira", "Sana", "Maryam", "Iqra", "Mahnoor", "Amna", "Rabia", "Areeba", "Kinza"},
		family: []string{"Khan", "Ahmed", "Malik", "Qureshi", "Chaudhry", "Butt", "Sheikh", "Raza", "Hussain", "Siddiqui", "Mirza", "Abbasi"},
		lang:   [4]int{2, 90, 0, 8},
		cc:     "+92", mobile: []string{"30", "31", "32", "34"}, natLen: 10,
		passport: "AB", passDigs: 7,
	},
	{
		code: "AF", weight: 4, regime: "visa",
		male:   []string{"Ahmad", "Mohammad", "Mustafa", "Farhad", "Wahid", "Naveed", "Jawad", "Sohail", "Rahmatullah", "Habib", "Zabihullah", "Omid"},
		female: []string{"Maryam", "Farzana", "Nilofar", "Mursal", "Zahra", "Shabnam", "Fereshta", "Mina", "Parisa", "Lina", "Sodaba", "Marwa"},
		family: []string{"Ahmadi", "Rahimi", "Hakimi", "Karimi", "Sultani", "Noori", "Popal", "Stanikzai", "Amiri", "Haidari", "Safi", "Wardak"},
		lang:   [4]int{20, 70, 0, 10},
		cc:     "+93", mobile: []string{"70", "72", "78", "79"}, natLen: 9,
		passport: "P", passDigs: 8,
	},
	{
		code: "MN", weight: 4, regime: "visa_free",
		male:   []string{"Bat-Erdene", "Temuulen", "Ganbold", "Enkhbold", "Tulga", "Munkh-Erdene", "Bilguun", "Erdenebat", "Batbayar", "Sukhbaatar", "Yerlan", "Nurbol"},
		female: []string{"Oyunchimeg", "Enkhjargal", "Nomin", "Anujin", "Khulan", "Solongo", "Saruul", "Munkhzul", "Bolormaa", "Uyanga", "Aigerim", "Gulnar"},
		family: []string{"Batbold", "Ganbaatar", "Purevdorj", "Bayarsaikhan", "Tserendorj", "Dorjsuren", "Enkhtaivan", "Altangerel", "Lkhagvasuren", "Otgonbayar", "Serikbol", "Kuanysh"},
		lang:   [4]int{25, 40, 25, 10}, // Kazakhs of Bayan-Olgii prefer kk
		cc:     "+976", mobile: []string{"88", "99", "95", "94", "80"}, natLen: 8,
		passport: "E", passDigs: 7,
	},
	{
		code: "TR", weight: 3, regime: "visa_free",
		male:   []string{"Mehmet", "Mustafa", "Ahmet", "Emre", "Burak", "Yusuf", "Murat", "Eren", "Kerem", "Can", "Oğuz", "Çağrı"},
		female: []string{"Zeynep", "Elif", "Ayşe", "Fatma", "Merve", "Esra", "Buse", "Ece", "Selin", "Defne", "Gülşen", "İrem"},
		family: []string{"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir", "Arslan", "Doğan"},
		lang:   [4]int{10, 75, 5, 10},
		cc:     "+90", mobile: []string{"53", "54", "55"}, natLen: 10,
		passport: "U", passDigs: 8,
	},
	{
		code: "IR", weight: 2, regime: "visa",
		male:   []string{"Amir", "Reza", "Mohammad", "Ali", "Hossein", "Mehdi", "Saeed", "Arash", "Kian", "Parsa"},
		female: []string{"Fatemeh", "Zahra", "Maryam", "Sara", "Niloufar", "Shirin", "Parisa", "Neda", "Yasaman", "Mahsa"},
		family: []string{"Mohammadi", "Hosseini", "Ahmadi", "Rezaei", "Moradi", "Karimi", "Jafari", "Rahimi", "Hashemi", "Ghasemi", "Sadeghi", "Tehrani"},
		lang:   [4]int{10, 80, 0, 10},
		cc:     "+98", mobile: []string{"91", "93"}, natLen: 10,
		passport: "K", passDigs: 8,
	},
	{
		code: "KR", weight: 2, regime: "visa_free",
		male:   []string{"Min-jun", "Seo-jun", "Do-yun", "Ji-ho", "Joon-young", "Hyun-woo", "Sung-min", "Jae-won"},
		female: []string{"Seo-yeon", "Ji-woo", "Ha-eun", "Soo-ah", "Min-seo", "Ye-jin", "Ji-yeon", "Hye-jin"},
		family: []string{"Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"},
		lang:   [4]int{10, 80, 0, 10},
		cc:     "+82", mobile: []string{"102", "103", "104", "106", "107", "108"}, natLen: 10,
		passport: "M", passDigs: 8,
	},
	{
		code: "AZ", weight: 2, regime: "visa_free", femSuffix: true,
		male:   []string{"Elvin", "Rashad", "Orkhan", "Farid", "Tural", "Kamran", "Murad", "Ilkin", "Nijat", "Emil"},
		female: []string{"Aysel", "Leyla", "Gunel", "Nigar", "Sevinj", "Aynur", "Lala", "Narmin", "Fidan", "Zahra"},
		family: []string{"Aliyev", "Mammadov", "Huseynov", "Hasanov", "Guliyev", "Ismayilov", "Abbasov", "Babayev", "Rzayev", "Jafarov"},
		lang:   [4]int{70, 20, 0, 10},
		cc:     "+994", mobile: []string{"50", "51", "55", "70", "77"}, natLen: 9,
		passport: "C", passDigs: 8,
	},
}

// kzMobile are the operator codes of Kazakh mobile numbers (+7 7xx).
var kzMobile = []string{"700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"}

// faculty is one row of sis.faculties, with the share of students in it.
type faculty struct {
	id, name, deanName, deanEmail, deanLanguage string // "" is NULL (email, language)
	weight                                      int
}

// faculties: eight, one (the preparatory department) without a dean email
// and one without a dean language.
var faculties = []faculty{
	{"ARCH", "Faculty of Architecture", "Aigul Serikbayeva", "dean.arch@iec.example.edu", "ru", 14},
	{"DES", "Faculty of Design", "Nurlan Abenov", "dean.design@iec.example.edu", "kk", 10},
	{"CIV", "Faculty of Civil Engineering", "Dana Kenzhebekova", "dean.civil@iec.example.edu", "ru", 16},
	{"CTIM", "Faculty of Construction Technologies, Infrastructure and Management", "Yerlan Smagulov", "dean.ctim@iec.example.edu", "ru", 12},
	{"BUS", "Business School", "Saule Tulegenova", "dean.business@iec.example.edu", "en", 16},
	{"IT", "School of Information Technology", "Marat Ospanov", "dean.it@iec.example.edu", "en", 18},
	{"ENV", "Faculty of Environmental Engineering", "Gulmira Zhakupova", "dean.env@iec.example.edu", "", 6},
	{"PREP", "Preparatory Department for International Students", "Askar Bekmukhambetov", "", "ru", 8},
}

// enrollment_status shares.
var statuses = []struct {
	code   string
	weight int
}{
	{"active", 860},
	{"applicant", 40},
	{"on_leave", 30},
	{"graduated", 40},
	{"withdrawn", 20},
	{"expelled", 10},
}

// Values of the bad classes.
var (
	unknownLanguages    = []string{"de", "uz", "english", "tr"}
	nonCanonicalLangs   = []string{"RU ", "EN", " kk", "Ru"}
	unknownRegimes      = []string{"tourist", "student", "work", "diplomatic"}
	unknownStatuses     = []string{"suspended", "transferred", "academic_leave", "alumni"}
	invalidPhones       = []string{"12345", "n/a", "+7 701", "0", "none"}
	markupNames         = []string{"<b>O'Brien</b>", "<script>alert(1)</script>", "<i>Smith</i> & Sons", "Ali<br>Khan"}
	namesWithLineBreaks = []string{"Ali\nKhan", "Maria\r\nIvanova", "Wei\n", "Aziz\tKarimov"}
)

// The stated reasons of trips (sis.travel_requests.reason). A term trip
// must give one, though the SIS does not always record it; a trip in a
// break sometimes has one.
var (
	termReasons = []string{
		"family event", "conference", "wedding of a relative", "sports competition",
		"visa interview at the embassy", "medical treatment at home", "internship interview",
		"academic olympiad", "funeral of a relative", "renewal of the national passport",
		"exchange programme selection", "illness of a parent",
	}
	vacationReasons = []string{
		"winter holidays at home", "summer holidays at home", "visiting family",
		"summer school", "tourism",
	}
)

// Shares of trips whose reason is NULL.
const (
	termReasonMissing     = 0.12
	vacationReasonMissing = 0.7
)

// reason is the stated reason of the n-th travel request, of kind, or ""
// (NULL). It is drawn from its own hash of (seed, n), not from the
// student's stream, so adding it changed no other generated value.
func (g *gen) reason(n int, kind string) string {
	x := splitmix(g.k2 ^ splitmix(uint64(n)^0x7265_6173_6f6e))
	roll := float64(x>>11) / (1 << 53) // uniform in [0, 1)
	pick := int((x & 0x7ff) % 1024)
	switch kind {
	case "term":
		if roll < termReasonMissing {
			return ""
		}
		return termReasons[pick%len(termReasons)]
	case "vacation":
		if roll < vacationReasonMissing {
			return ""
		}
		return vacationReasons[pick%len(vacationReasons)]
	}
	return ""
}
