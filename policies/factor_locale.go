package policies

import "strings"

// DefaultLocale is the normalized LANG.
const DefaultLocale = "C.UTF-8"

// localeFactor is LANG, and LC_ALL and LANGUAGE when perturbed.
var localeFactor = Factor{
	Name: "locale",
	Doc:  "LANG; perturbed, LANG, LC_ALL and LANGUAGE are all set to fr_FR.UTF-8 (generated in the image)",
	Sets: []string{"Locale", "LocaleAll"},
	Normalize: func(s *Settings) {
		s.Locale, s.LocaleAll = DefaultLocale, false
	},
	Perturb: func(s *Settings, _ uint64) {
		s.Locale, s.LocaleAll = "fr_FR.UTF-8", true
	},
	Value: func(s Settings) string {
		if s.LocaleAll {
			return "LANG=LC_ALL=" + s.Locale
		}
		return "LANG=" + s.Locale
	},
	Env: func(s Settings) []string {
		env := []string{"LANG=" + s.Locale}
		if s.LocaleAll {
			env = append(env, "LC_ALL="+s.Locale, "LANGUAGE="+language(s.Locale))
		}
		return env
	},
	// The locale's name and its language_TERRITORY part (fr_FR), which
	// messages catalogues and formatted paths carry.
	Evidence: func(base, vs Settings) Evidence {
		if vs.Locale == base.Locale {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.Locale, language(vs.Locale)}}
	},
	Probe: Probe{
		Keys:      []string{"lang", "lc_all"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			lcAll := ""
			if s.LocaleAll {
				lcAll = s.Locale
			}
			// locale_ok: the image has the locale (no "Cannot set" warning).
			return map[string]string{"lang": s.Locale, "lc_all": lcAll, "locale_ok": "0"}
		},
	},
}

// language is a locale's name without its codeset: fr_FR for fr_FR.UTF-8.
func language(locale string) string { return strings.SplitN(locale, ".", 2)[0] }
