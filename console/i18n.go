package console

// messages are the console's words by language (ru, kk, en) and key. Each
// file registers its own with addMessages, from an init function.
var messages = map[string]map[string]string{"ru": {}, "kk": {}, "en": {}}

// addMessages adds the words of one language.
func addMessages(lang string, kv map[string]string) {
	for k, v := range kv {
		messages[lang][k] = v
	}
}

// t is the word key in lang, falling back to Russian, then English, then
// the key itself.
func t(lang, key string) string {
	for _, l := range []string{lang, "ru", "en"} {
		if s, ok := messages[l][key]; ok {
			return s
		}
	}
	return key
}
