package policies

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultLocale is the normalized LANG.
const DefaultLocale = "C.UTF-8"

// The perturbed locale: one build exposes each class of locale bug, so the
// categories are set apart where LANG's locale cannot carry a class (all of
// them are generated in the default image, images.Locales).
const (
	// perturbedLang is LANG: translated messages (LC_MESSAGES), a decimal
	// comma and thousands separator (LC_NUMERIC), dates in French
	// (LC_TIME).
	perturbedLang = "fr_FR.UTF-8"
	// perturbedCtype is LC_CTYPE: Turkish case mapping, where i upper-cases
	// to İ and I lower-cases to ı, so case-insensitive keywords break.
	perturbedCtype = "tr_TR.UTF-8"
	// perturbedCollate is LC_COLLATE: Estonian sorts z between s and t and,
	// like every non-C locale, ignores case first, so sort(1), ls and
	// strcoll order words unlike byte order.
	perturbedCollate = "et_EE.UTF-8"
)

// localeFactor is LANG and, perturbed, LC_CTYPE, LC_COLLATE and LANGUAGE.
var localeFactor = Factor{
	Name: "locale",
	Doc: "LANG; perturbed, LANG=" + perturbedLang + " (translated messages, decimal comma, French dates), " +
		"LC_CTYPE=" + perturbedCtype + " (i upper-cases to İ), LC_COLLATE=" + perturbedCollate +
		" (z sorts before t, case ignored) and LANGUAGE=fr; LC_ALL stays unset so each category holds",
	Sets: []string{"Locale", "LocaleVars"},
	Normalize: func(s *Settings) {
		s.Locale, s.LocaleVars = DefaultLocale, nil
	},
	Perturb: func(s *Settings, _ uint64) {
		s.Locale = perturbedLang
		s.LocaleVars = []string{"LANGUAGE=fr", "LC_COLLATE=" + perturbedCollate, "LC_CTYPE=" + perturbedCtype}
	},
	Value: func(s Settings) string {
		return strings.Join(append([]string{"LANG=" + s.Locale}, s.LocaleVars...), " ")
	},
	Validate: func(s Settings) error {
		for _, kv := range s.LocaleVars {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || (!strings.HasPrefix(k, "LC_") && k != "LANGUAGE") {
				return fmt.Errorf("policies: locale variable %q is not LC_*=VALUE or LANGUAGE=VALUE", kv)
			}
		}
		return nil
	},
	Reserves: []string{"LC_ALL"},
	Env: func(s Settings) []string {
		return append([]string{"LANG=" + s.Locale}, s.LocaleVars...)
	},
	// The locales' names and their language_TERRITORY parts (fr_FR), which
	// message catalogues and formatted paths carry; the letters only
	// Turkish case mapping makes (beside a letter); and text only French
	// messages and dates
	// hold (glibc's and coreutils' translations, LC_TIME's months).
	Evidence: func(base, vs Settings) Evidence {
		if vs.Locale == base.Locale && slices.Equal(vs.LocaleVars, base.LocaleVars) {
			return Evidence{}
		}
		var ev Evidence
		add := func(v string) {
			if v != "" && !slices.Contains(ev.Values, v) {
				ev.Values = append(ev.Values, v)
			}
		}
		for _, l := range append([]string{"LANG=" + vs.Locale}, vs.LocaleVars...) {
			k, v, _ := strings.Cut(l, "=")
			// Not LANGUAGE's "fr": two letters occur in any bytes.
			if k == "LANGUAGE" || v == DefaultLocale || v == base.Locale {
				continue
			}
			add(v)
			add(language(v))
			if strings.HasPrefix(v, "tr_") {
				for _, w := range turkishCase {
					add(w)
				}
			}
			if strings.HasPrefix(v, "fr_") {
				for _, m := range frenchText {
					add(m)
				}
			}
		}
		// LC_NUMERIC follows LANG: a locale with a decimal comma shows as
		// 3,14 where the control printed 3.14.
		if vs.Locale != base.Locale && decimalComma(vs.Locale) {
			ev.Matchers = append(ev.Matchers, MatchDecimalComma)
		}
		// LC_COLLATE (or LANG): sort(1) and strcoll order lines and words
		// unlike byte order.
		if collate(vs) != collate(base) {
			ev.Matchers = append(ev.Matchers, MatchCollation)
		}
		return ev
	},
	Probe: Probe{
		Keys:      []string{"lang", "lc_ctype", "lc_collate", "decimal_point", "sort_stz"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			ctype, collate := s.Locale, s.Locale
			for _, kv := range s.LocaleVars {
				if v, ok := strings.CutPrefix(kv, "LC_CTYPE="); ok {
					ctype = v
				}
				if v, ok := strings.CutPrefix(kv, "LC_COLLATE="); ok {
					collate = v
				}
			}
			// locale_ok: the image has every locale (no "Cannot set"
			// warning).
			return map[string]string{"lang": s.Locale, "lc_all": "", "lc_ctype": ctype, "lc_collate": collate, "locale_ok": "0"}
		},
	},
}

// frenchText is text that only French messages and dates produce: glibc's
// strerror and coreutils' commonest messages in French, and LC_TIME's month
// abbreviations that no English text holds.
var frenchText = []string{
	"Aucun fichier ou dossier de ce type", "Permission non accordée", "Le fichier existe",
	"impossible d'", "Opération non permise", "Succès",
	"janv.", "févr.", "avr.", "juil.", "août", "déc.",
}

// turkishCase are the letters only Turkish case mapping makes, next to a
// letter of the same case (PRİNT, lıne): the two bytes of İ or ı alone occur
// by chance in any binary section.
var turkishCase = func() []string {
	var out []string
	for c := 'A'; c <= 'Z'; c++ {
		out = append(out, "İ"+string(c), string(c)+"İ")
	}
	for c := 'a'; c <= 'z'; c++ {
		out = append(out, "ı"+string(c), string(c)+"ı")
	}
	return out
}()

// language is a locale's name without its codeset: fr_FR for fr_FR.UTF-8.
func language(locale string) string { return strings.SplitN(locale, ".", 2)[0] }

// decimalComma says whether a locale writes numbers with a decimal comma: the
// languages of continental Europe, Latin America and beyond whose glibc
// LC_NUMERIC has decimal_point ",".
func decimalComma(locale string) bool {
	lang, _, _ := strings.Cut(language(locale), "_")
	return slices.Contains([]string{"bg", "ca", "cs", "da", "de", "el", "es", "et", "eu", "fi", "fr", "gl", "hr", "hu", "id",
		"is", "it", "lt", "lv", "nb", "nl", "nn", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr", "sv", "tr", "uk", "vi"}, lang)
}

// collate is the locale LC_COLLATE takes its order from.
func collate(s Settings) string {
	for _, kv := range s.LocaleVars {
		if v, ok := strings.CutPrefix(kv, "LC_COLLATE="); ok {
			return v
		}
	}
	return s.Locale
}
