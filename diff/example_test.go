package diff_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/reprobox/reprobox/diff"
)

// A check compares the artifacts of a normal and a perturbed build, passing the
// perturbed values so that differences are labelled with the factor behind them.
func ExampleFiles() {
	opts := diff.Options{
		Labels: []diff.Label{{Factor: "hostname", Values: []string{"reprobox-variant"}}},
		TimeRanges: []diff.TimeRange{{
			Factor: "time",
			From:   time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			To:     time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		}},
	}
	rep, err := diff.Files(context.Background(), "testdata/text/a.txt", "testdata/text/b.txt", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("equal:", rep.Equal())
	fmt.Println("factors:", rep.Factors())
	rep.WriteText(os.Stdout, 4)
	// Output:
	// equal: false
	// factors: [hostname time]
	// a.txt  [text] changed: 3 lines removed, 3 lines added  {hostname, time}
	//   │ @@ -1,8 +1,8 @@
	//   │  # build info
	//   │ … 10 more lines
}
