package gatewayemu

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// HTTP API authorizers (apigatewayv2): JWT, checked by the emulator itself, and Lambda REQUEST
// authorizers, backed by a function registered with RegisterHTTPLambda.

type jwtConfiguration struct {
	Audience []string `json:"audience,omitempty"`
	Issuer   string   `json:"issuer,omitempty"`
}

// httpAuthorizer is the stored authorizer; its JSON tags are CreateAuthorizer's input, and
// MarshalJSON renders it as AWS answers for its type.
type httpAuthorizer struct {
	AuthorizerID                   string            `json:"authorizerId"`
	AuthorizerType                 string            `json:"authorizerType"`
	Name                           string            `json:"name"`
	IdentitySource                 []string          `json:"identitySource"`
	JWTConfiguration               *jwtConfiguration `json:"jwtConfiguration"`
	AuthorizerURI                  string            `json:"authorizerUri"`
	AuthorizerCredentialsARN       string            `json:"authorizerCredentialsArn"`
	AuthorizerPayloadFormatVersion string            `json:"authorizerPayloadFormatVersion"`
	EnableSimpleResponses          bool              `json:"enableSimpleResponses"`
	AuthorizerResultTTLInSeconds   *int32            `json:"authorizerResultTtlInSeconds"`
}

// MarshalJSON answers the fields AWS returns for the authorizer's type: a JWT authorizer has no
// Lambda settings, and a REQUEST authorizer always states its payload format, TTL and response
// mode.
func (a httpAuthorizer) MarshalJSON() ([]byte, error) {
	out := map[string]any{"authorizerId": a.AuthorizerID, "authorizerType": a.AuthorizerType, "name": a.Name}
	if len(a.IdentitySource) > 0 {
		out["identitySource"] = a.IdentitySource
	}
	switch a.AuthorizerType {
	case "JWT":
		out["jwtConfiguration"] = a.JWTConfiguration
	case "REQUEST":
		out["authorizerUri"] = a.AuthorizerURI
		out["authorizerPayloadFormatVersion"] = a.AuthorizerPayloadFormatVersion
		out["authorizerResultTtlInSeconds"] = a.ttl()
		out["enableSimpleResponses"] = a.EnableSimpleResponses
		if a.AuthorizerCredentialsARN != "" {
			out["authorizerCredentialsArn"] = a.AuthorizerCredentialsARN
		}
	}
	return json.Marshal(out)
}

// ttl is the result TTL in seconds. Unlike REST's (300 when unset), the apigatewayv2 reference
// gives no default, and AWS refuses an unset TTL only when it would need an identity source, so
// an unset TTL is caching off.
func (a *httpAuthorizer) ttl() int32 {
	if a.AuthorizerResultTTLInSeconds == nil {
		return 0
	}
	return *a.AuthorizerResultTTLInSeconds
}

func (e *Emulator) createHTTPAuthorizer(r *http.Request) (int, any, error) {
	var in httpAuthorizer
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		if in.AuthorizerType == "JWT" && (in.AuthorizerURI != "" || in.AuthorizerPayloadFormatVersion != "" ||
			in.EnableSimpleResponses || in.AuthorizerResultTTLInSeconds != nil || in.AuthorizerCredentialsARN != "") {
			return 0, nil, badRequest("AuthorizerUri, AuthorizerCredentialsArn, AuthorizerPayloadFormatVersion, AuthorizerResultTtlInSeconds and EnableSimpleResponses apply to REQUEST authorizers only")
		}
		if err := checkHTTPAuthorizer(&in); err != nil {
			return 0, nil, err
		}
		if len(api.authorizers) >= maxAuthorizersPerAPI {
			return 0, nil, limitExceeded("Maximum number of Authorizers for this API has been reached")
		}
		in.AuthorizerID = newID(6)
		api.authorizers[in.AuthorizerID] = &in
		return http.StatusCreated, in, nil
	})
}

func (e *Emulator) getHTTPAuthorizer(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		a := api.authorizers[r.PathValue("authorizerId")]
		if a == nil {
			return 0, nil, notFound("Invalid Authorizer identifier specified %s", r.PathValue("authorizerId"))
		}
		return http.StatusOK, *a, nil
	})
}

// httpAuthorizerUpdate is UpdateAuthorizer's input: only the fields present change.
type httpAuthorizerUpdate struct {
	Name             *string  `json:"name"`
	AuthorizerType   *string  `json:"authorizerType"`
	IdentitySource   []string `json:"identitySource"`
	AuthorizerURI    *string  `json:"authorizerUri"`
	JWTConfiguration *struct {
		Audience []string `json:"audience"`
		Issuer   *string  `json:"issuer"`
	} `json:"jwtConfiguration"`
	AuthorizerCredentialsARN       *string `json:"authorizerCredentialsArn"`
	AuthorizerPayloadFormatVersion *string `json:"authorizerPayloadFormatVersion"`
	EnableSimpleResponses          *bool   `json:"enableSimpleResponses"`
	AuthorizerResultTTLInSeconds   *int32  `json:"authorizerResultTtlInSeconds"`
}

// updateHTTPAuthorizer applies the fields present in the body and checks the result as a whole,
// as UpdateAuthorizer does; a refused update changes nothing.
func (e *Emulator) updateHTTPAuthorizer(r *http.Request) (int, any, error) {
	var in httpAuthorizerUpdate
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		a := api.authorizers[r.PathValue("authorizerId")]
		if a == nil {
			return 0, nil, notFound("Invalid Authorizer identifier specified %s", r.PathValue("authorizerId"))
		}
		next := in.applyTo(*a)
		if err := checkHTTPAuthorizer(&next); err != nil {
			return 0, nil, err
		}
		*a = next
		return http.StatusOK, next, nil
	})
}

func (in *httpAuthorizerUpdate) applyTo(next httpAuthorizer) httpAuthorizer {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&next.Name, in.Name)
	set(&next.AuthorizerType, in.AuthorizerType)
	set(&next.AuthorizerURI, in.AuthorizerURI)
	set(&next.AuthorizerCredentialsARN, in.AuthorizerCredentialsARN)
	set(&next.AuthorizerPayloadFormatVersion, in.AuthorizerPayloadFormatVersion)
	if in.IdentitySource != nil {
		next.IdentitySource = in.IdentitySource
	}
	if in.EnableSimpleResponses != nil {
		next.EnableSimpleResponses = *in.EnableSimpleResponses
	}
	if in.AuthorizerResultTTLInSeconds != nil {
		ttl := *in.AuthorizerResultTTLInSeconds
		next.AuthorizerResultTTLInSeconds = &ttl
	}
	if c := in.JWTConfiguration; c != nil {
		jc := jwtConfiguration{}
		if next.JWTConfiguration != nil {
			jc = *next.JWTConfiguration
		}
		if c.Audience != nil {
			jc.Audience = c.Audience
		}
		set(&jc.Issuer, c.Issuer)
		next.JWTConfiguration = &jc
	}
	return next
}

func checkHTTPAuthorizer(a *httpAuthorizer) error {
	if a.Name == "" {
		return badRequest("Name must be specified")
	}
	switch a.AuthorizerType {
	case "JWT":
		return checkJWTAuthorizer(a)
	case "REQUEST":
		return checkRequestAuthorizer(a)
	default:
		return badRequest("Invalid authorizer type %q: valid values are JWT, REQUEST", a.AuthorizerType)
	}
}

func checkJWTAuthorizer(a *httpAuthorizer) error {
	if len(a.IdentitySource) == 0 {
		return badRequest("Identity source must be specified")
	}
	c := a.JWTConfiguration
	if c == nil || c.Issuer == "" {
		return badRequest("JwtConfiguration.Issuer must be specified for a JWT authorizer")
	}
	if u, err := url.Parse(c.Issuer); err != nil || !u.IsAbs() || u.Host == "" {
		return badRequest("JwtConfiguration.Issuer must be an absolute URL, got %q", c.Issuer)
	}
	if len(c.Audience) == 0 {
		return badRequest("JwtConfiguration.Audience must name at least one audience")
	}
	return nil
}

// checkRequestAuthorizer applies AWS's rules for a Lambda REQUEST authorizer. Where AWS's words
// are known they are used as is ("… is a required parameter for REQUEST authorizer", "Identity
// source must be set if …"); the other messages name the field and the allowed values.
func checkRequestAuthorizer(a *httpAuthorizer) error {
	if a.AuthorizerURI == "" {
		return badRequest("AuthorizerUri must be specified for a REQUEST authorizer")
	}
	switch a.AuthorizerPayloadFormatVersion {
	case "":
		return badRequest("AuthorizerPayloadFormatVersion is a required parameter for REQUEST authorizer")
	case "1.0", "2.0":
	default:
		return badRequest("Invalid AuthorizerPayloadFormatVersion %q: valid values are 1.0, 2.0", a.AuthorizerPayloadFormatVersion)
	}
	if a.EnableSimpleResponses && a.AuthorizerPayloadFormatVersion != "2.0" {
		return badRequest("EnableSimpleResponses is supported only for AuthorizerPayloadFormatVersion 2.0")
	}
	if ttl := a.ttl(); ttl < 0 || ttl > 3600 {
		return badRequest("AuthorizerResultTtlInSeconds must be between 0 and 3600, got %d", ttl)
	}
	if a.ttl() > 0 && len(a.IdentitySource) == 0 {
		return badRequest("Identity source must be set if authorizer caching is enabled (TTL is greater than 0)")
	}
	for _, s := range a.IdentitySource {
		if err := checkIdentitySource(s); err != nil {
			return err
		}
	}
	return nil
}

// contextIdentitySources are the $context variables the emulator can read as identity sources.
var contextIdentitySources = []string{"accountId", "apiId", "domainName", "httpMethod", "identity.sourceIp",
	"identity.userAgent", "protocol", "routeKey", "stage"}

// checkIdentitySource accepts the selection expressions an HTTP API Lambda authorizer reads.
func checkIdentitySource(s string) error {
	for _, prefix := range []string{"$request.header.", "$request.querystring.", "$stageVariables."} {
		if name, ok := strings.CutPrefix(s, prefix); ok && name != "" {
			return nil
		}
	}
	if name, ok := strings.CutPrefix(s, "$context."); ok {
		if slices.Contains(contextIdentitySources, name) {
			return nil
		}
		return badRequest("the API Gateway emulator reads only these context variables as identity sources: $context.%s; got %q",
			strings.Join(contextIdentitySources, ", $context."), s)
	}
	return badRequest("Invalid identity source %q: use $request.header.<name>, $request.querystring.<name>, $stageVariables.<name> or $context.<variable>", s)
}

// resetAuthorizersCache empties a stage's authorizer result cache. AWS documents only 204 and
// 404 (and throttling) for it: a stage whose authorizers keep no cache (JWT) is reset as well.
func (e *Emulator) resetAuthorizersCache(r *http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, st, err := e.httpStageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	st.cache.flush()
	return http.StatusNoContent, nil, nil
}
