package policies

import specs "github.com/opencontainers/runtime-spec/specs-go"

// DefaultDomainname is the normalized UTS NIS domain name.
const DefaultDomainname = "reprobox.invalid"

// domainnameFactor is the UTS NIS domain name.
var domainnameFactor = Factor{
	Name:      "domainname",
	Doc:       "the UTS NIS domain name (domainname, getdomainname)",
	Needs:     []Need{NeedUTSNames},
	Sets:      []string{"Domainname"},
	Normalize: func(s *Settings) { s.Domainname = DefaultDomainname },
	Perturb: func(s *Settings, seed uint64) {
		s.Domainname = "rbx-domain-" + word(seed, "domainname") + ".example"
	},
	Value: func(s Settings) string { return s.Domainname },
	Apply: func(s Settings, spec *specs.Spec) { spec.Domainname = s.Domainname },
	Evidence: func(base, vs Settings) Evidence {
		if vs.Domainname == base.Domainname {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.Domainname}}
	},
	Probe: Probe{
		Keys: []string{"domainname"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"domainname": s.Domainname}
		},
	},
}
