package policies

import (
	"fmt"
	"strconv"
)

// The normalized build user.
const (
	DefaultUser = "builder"
	DefaultUID  = 1000
	DefaultGID  = 1000
)

// userFactor is the build user. Render runs the process as UID:GID and adds
// the user to the image's /etc/passwd and /etc/group for the build.
var userFactor = Factor{
	Name:  "user",
	Doc:   "the build user's uid, gid, name, USER and LOGNAME; HOME is unchanged",
	Needs: []Need{NeedUser},
	Sets:  []string{"User", "UID", "GID"},
	Normalize: func(s *Settings) {
		s.User, s.UID, s.GID = DefaultUser, DefaultUID, DefaultGID
	},
	Perturb: func(s *Settings, seed uint64) {
		n := 2000 + uint32(pick(seed, "user", 1000))
		s.UID, s.GID, s.User = n, n, "rbxuser"+strconv.Itoa(int(n))
	},
	Value: func(s Settings) string { return fmt.Sprintf("%s %d:%d", s.User, s.UID, s.GID) },
	Validate: func(s Settings) error {
		if s.UID == 0 || s.GID == 0 {
			return fmt.Errorf("policies: the build user must not be root")
		}
		return nil
	},
	Env: func(s Settings) []string { return []string{"USER=" + s.User, "LOGNAME=" + s.User} },
	Evidence: func(base, vs Settings) Evidence {
		if vs.User == base.User {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.User}}
	},
	Probe: Probe{
		Keys:      []string{"uid", "gid", "user"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"uid": strconv.Itoa(int(s.UID)), "gid": strconv.Itoa(int(s.GID)), "user": s.User}
		},
	},
}
