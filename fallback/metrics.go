package fallback

import "github.com/herald-go/herald/metrics"

// meterResume counts a client's attempt to resume (Options.Metrics): known reports whether the
// session it named was found here, resumed whether it got every message it missed, and reset
// whether it was told to start again.
func (srv *Server) meterResume(known, resumed, reset bool) {
	rec := srv.opts.Metrics
	switch {
	case rec == nil:
	case known && resumed:
		rec.Resumed(metrics.ResumeHit)
	case known:
		rec.Resumed(metrics.ResumeReset)
	case reset:
		rec.Resumed(metrics.ResumeMiss)
	}
}
