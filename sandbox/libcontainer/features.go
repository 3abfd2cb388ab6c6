package libcontainer

import "github.com/reprobox/reprobox/sandbox"

// Features are the parts of a job beyond a plain OCI spec that this backend
// applies: all of them. `reprobox factors --backend libcontainer` reads it.
var Features = sandbox.AllFeatures
