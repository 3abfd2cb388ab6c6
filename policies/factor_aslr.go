package policies

// aslrFactor is address space layout randomization.
var aslrFactor = Factor{
	Name:      "aslr",
	Doc:       "address space layout randomization; normalized off with the ADDR_NO_RANDOMIZE personality",
	Needs:     []Need{NeedPersonality},
	Sets:      []string{"ASLR"},
	Normalize: func(s *Settings) { s.ASLR = false },
	Perturb:   func(s *Settings, _ uint64) { s.ASLR = true },
	Value: func(s Settings) string {
		if s.ASLR {
			return "on"
		}
		return "off"
	},
	Personality: func(s Settings) uint32 {
		if !s.ASLR {
			return PersonalityAddrNoRandomize
		}
		return 0
	},
	// Addresses that move leave no string of the factor's own: they show
	// as user-space addresses that differ at the same place (printed in
	// hex, or as 8-byte words in binary data).
	Evidence: func(base, vs Settings) Evidence {
		if vs.ASLR == base.ASLR {
			return Evidence{}
		}
		return Evidence{Matchers: []string{MatchAddress}}
	},
	Probe: Probe{
		Keys:      []string{"personality"},
		AlsoMoves: []string{"stack"},
		// The personality key holds every factor's flags: the suite
		// expects Settings.Personality there, as it expects Environ.
		Expect: func(Settings) map[string]string { return map[string]string{} },
	},
}
