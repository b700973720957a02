package testsuite

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Server is gofakes3, a third-party S3 implementation, served in process on a loopback port
// and reached by the real aws-sdk-go-v2 s3 client (path-style addressing). Objects are also
// readable over plain HTTP at URL/bucket/key, which is how verifiers fetch a published JWKS.
type S3Server struct {
	URL  string
	srv  *http.Server
	done chan struct{}
}

// cacheControlMeta is where the bed keeps an object's Cache-Control: gofakes3 v1.2.0 stores only
// x-amz-* and a few content headers, and S3 stores and serves Cache-Control, which JWKS
// publication relies on.
const cacheControlMeta = "X-Amz-Bed-Cache-Control"

func startS3() (*S3Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false))
	s := &S3Server{
		URL:  "http://" + l.Addr().String(),
		srv:  &http.Server{Handler: keepCacheControl(fake.Server()), ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return s, nil
}

func keepCacheControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			if cc := r.Header.Get("Cache-Control"); cc != "" {
				r.Header.Set(cacheControlMeta, cc)
			}
		}
		cw := &cacheControlWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.wrote { // HEAD answers may write neither header nor body explicitly
			cw.WriteHeader(http.StatusOK)
		}
	})
}

type cacheControlWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *cacheControlWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		h := w.Header()
		if cc := h.Get(cacheControlMeta); cc != "" {
			h.Set("Cache-Control", cc)
			h.Del(cacheControlMeta)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cacheControlWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (s *S3Server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
