package main

import (
	"errors"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/runner"
)

// isUsage reports whether err is the user's to fix: bad input, a bad config, an
// unknown or unpinned image, an image a build still uses.
func isUsage(err error) bool {
	return errors.Is(err, runner.ErrConfig) ||
		errors.Is(err, images.ErrNotFound) ||
		errors.Is(err, images.ErrNotPinned) ||
		errors.Is(err, images.ErrInvalid) ||
		errors.Is(err, images.ErrInUse) ||
		errors.Is(err, images.ErrRegistry)
}
