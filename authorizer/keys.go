package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"

	"github.com/rollgate/rollgate/internal/tokens"
)

// keySet is the issuer's JWKS (a tokens.KeySet), loaded on first need. A JWKS that is missing or
// unreadable at start must not crash-loop a Lambda or a pod: until it loads, every request is
// refused, and loading is retried at most once per retry interval.
type keySet struct {
	cfg    Config
	client *http.Client
	logger *slog.Logger
	// life bounds keyfunc's background refresh: the process, not one request.
	life context.Context

	kf      atomic.Pointer[keyfunc.Keyfunc]
	mu      sync.Mutex // held while loading
	lastTry time.Time
	failing bool
}

// noKeys answers every lookup before the JWKS has loaded.
var noKeys = jwkset.NewMemoryStorage()

func newKeySet(life context.Context, cfg Config, client *http.Client, logger *slog.Logger) *keySet {
	return &keySet{cfg: cfg, client: client, logger: logger, life: life}
}

// Storage implements tokens.KeySet.
func (k *keySet) Storage() jwkset.Storage {
	if kf := k.kf.Load(); kf != nil {
		return (*kf).Storage()
	}
	return noKeys
}

// ready reports whether the keys are loaded, trying to load them when the last attempt is old
// enough. A request that finds another one loading does not wait for it.
func (k *keySet) ready(ctx context.Context) bool {
	if k.kf.Load() != nil {
		return true
	}
	if !k.mu.TryLock() {
		return false
	}
	defer k.mu.Unlock()
	if k.kf.Load() != nil {
		return true
	}
	if !k.lastTry.IsZero() && time.Since(k.lastTry) < k.cfg.JWKSUnknownKIDRefresh {
		return false
	}
	k.lastTry = time.Now()
	kf, err := k.load(ctx)
	if err != nil {
		if !k.failing { // one line when it starts failing, not one per request
			k.logger.Error("JWKS unavailable: every request is refused until it loads", "error", err,
				"retry_every", k.cfg.JWKSUnknownKIDRefresh.String())
			k.failing = true
		}
		return false
	}
	k.kf.Store(&kf)
	if k.failing {
		k.logger.Info("JWKS loaded; verifying tokens again")
	}
	return true
}

func (k *keySet) load(ctx context.Context) (keyfunc.Keyfunc, error) {
	jwksURL := k.cfg.JWKSURL
	if jwksURL == "" {
		var err error
		if jwksURL, err = k.discover(ctx); err != nil {
			return nil, err
		}
	}
	return tokens.RemoteKeySet(k.life, jwksURL, tokens.RemoteKeySetOptions{
		CacheTTL: k.cfg.JWKSCacheTTL, UnknownKIDRefresh: k.cfg.JWKSUnknownKIDRefresh, HTTPClient: k.client,
	})
}

// discover reads jwks_uri from the issuer's OpenID discovery document.
func (k *keySet) discover(ctx context.Context) (string, error) {
	doc, err := tokens.Discover(ctx, k.client, k.cfg.Issuer)
	if err != nil {
		return "", err
	}
	if u, err := url.Parse(doc.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("discovery %s: %w", tokens.DiscoveryURL(k.cfg.Issuer), errors.New("jwks_uri is not an http(s) URL"))
	}
	return doc.JWKSURI, nil
}
