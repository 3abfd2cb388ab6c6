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
	Doc:   "the build user's uid, gid, name, USER and LOGNAME; HOME is unchanged. Perturbed, a longer name and uid/gid 2000-2999, which archive owners, id(1) output and ls -l column widths show",
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
	// The user's name, and its uid and gid as id(1), ls -n, stat, a
	// diff of archive owners ("2042:2042") and a tar header (seven octal
	// digits) write them.
	Evidence: func(base, vs Settings) Evidence {
		var ev Evidence
		if vs.User != base.User {
			ev.Values = append(ev.Values, vs.User)
		}
		if vs.UID != base.UID || vs.GID != base.GID {
			ev.Values = append(ev.Values, fmt.Sprintf("%d:%d", vs.UID, vs.GID), fmt.Sprintf("%d %d", vs.UID, vs.GID))
		}
		if vs.UID != base.UID {
			ev.Values = append(ev.Values, fmt.Sprintf("uid=%d", vs.UID), fmt.Sprintf("%07o\x00", vs.UID))
		}
		if vs.GID != base.GID {
			ev.Values = append(ev.Values, fmt.Sprintf("gid=%d", vs.GID), fmt.Sprintf("%07o\x00", vs.GID))
		}
		return ev
	},
	Probe: Probe{
		Keys:      []string{"uid", "gid", "user"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"uid": strconv.Itoa(int(s.UID)), "gid": strconv.Itoa(int(s.GID)), "user": s.User}
		},
	},
}
