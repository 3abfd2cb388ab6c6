package policies

// kernelFactor is the kernel release the build sees. The backend makes
// /proc/sys/kernel/osrelease agree with uname(2).
var kernelFactor = Factor{
	Name:      "kernel",
	Doc:       "the kernel release uname(2) and /proc/sys/kernel/osrelease report; perturbed, the UNAME26 personality and a bind mount report a 2.6 release (as reprotest's setarch --uname-2.6: a release of another major version and form)",
	Needs:     []Need{NeedPersonality},
	Sets:      []string{"Uname26"},
	Normalize: func(s *Settings) { s.Uname26 = false },
	Perturb:   func(s *Settings, _ uint64) { s.Uname26 = true },
	Value: func(s Settings) string {
		if s.Uname26 {
			return "2.6 (UNAME26)"
		}
		return "host"
	},
	Personality: func(s Settings) uint32 {
		if s.Uname26 {
			return PersonalityUname26
		}
		return 0
	},
	Evidence: func(base, vs Settings) Evidence {
		if vs.Uname26 == base.Uname26 {
			return Evidence{}
		}
		return Evidence{Values: []string{"2.6."}}
	},
	Probe: Probe{
		// The normalized release is the host's: the probe checks that it
		// moves, and that uname and osrelease agree either way.
		Keys:      []string{"uname_r", "osrelease"},
		AlsoMoves: []string{"personality"},
		Expect: func(Settings) map[string]string {
			return map[string]string{"uname_agrees": "yes"}
		},
	},
}
