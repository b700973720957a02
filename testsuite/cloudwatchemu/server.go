package cloudwatchemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Server is a Store answering CloudWatch's API on a loopback listener of its own.
type Server struct {
	*Store
	// URL is the endpoint for the SDK client (BaseEndpoint, or AWS_ENDPOINT_URL_CLOUDWATCH).
	URL string
	srv *http.Server
}

// Start serves a new Store on a free loopback port.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Store: NewStore(), URL: "http://" + l.Addr().String()}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the listener.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// The Smithy RPC v2 CBOR protocol (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html):
// POST /service/{service}/operation/{operation}, a CBOR body, Smithy-Protocol: rpc-v2-cbor.
// CloudWatch's model carries awsQueryCompatible, so an error also names its awsQuery code in
// X-Amzn-Query-Error ("InvalidParameterValue;Sender"), which the SDK reports as ErrorCode().
const (
	servicePath     = "/service/GraniteServiceVersion20100801/operation/"
	protocolHeader  = "Smithy-Protocol"
	protocolName    = "rpc-v2-cbor"
	errorNamespace  = "com.amazonaws.cloudwatch#"
	maxRequestBytes = 1 << 20
)

// apiError is one of CloudWatch's modelled errors.
type apiError struct {
	shape     string // the error structure's name
	queryCode string // its awsQuery error code
	status    int
	message   string
}

func (e *apiError) Error() string { return e.queryCode + ": " + e.message }

func invalidValue(format string, a ...any) error {
	return &apiError{"InvalidParameterValueException", "InvalidParameterValue", 400, fmt.Sprintf(format, a...)}
}

func invalidCombination(format string, a ...any) error {
	return &apiError{"InvalidParameterCombinationException", "InvalidParameterCombination", 400, fmt.Sprintf(format, a...)}
}

func missingParameter(name string) error {
	return &apiError{"MissingRequiredParameterException", "MissingParameter", 400,
		fmt.Sprintf("The parameter %s is required.", name)}
}

func invalidNextToken() error {
	return &apiError{"InvalidNextToken", "InvalidNextToken", 400, "The service returned an invalid NextToken."}
}

// Handler answers CloudWatch's operations that the bed supports, in Smithy RPC v2 CBOR (what
// aws-sdk-go-v2 speaks) or AWS JSON 1.0.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAWSJSON(r) {
			s.serveAWSJSON(w, r)
			return
		}
		op, ok := strings.CutPrefix(r.URL.Path, servicePath)
		if r.Method != http.MethodPost || !ok || r.Header.Get(protocolHeader) != protocolName {
			writeError(w, &apiError{"UnknownOperationException", "UnknownOperation", 404,
				"this endpoint speaks Smithy RPC v2 CBOR (POST " + servicePath + "{Operation} with Smithy-Protocol: rpc-v2-cbor) " +
					"and AWS JSON 1.0 (POST / with X-Amz-Target: " + jsonTargetPrefix + "{Operation})"})
			return
		}
		in, err := readInput(r)
		if err != nil {
			writeError(w, &apiError{"SerializationException", "SerializationException", 400, err.Error()})
			return
		}
		out, err := s.operation(op, in)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set(protocolHeader, protocolName)
		_, _ = w.Write(cbor.Encode(out))
	})
}

func (s *Server) operation(op string, in cbor.Map) (cbor.Map, error) {
	switch op {
	case "GetMetricData":
		return s.getMetricData(in)
	case "ListMetrics":
		return s.listMetrics(in)
	default:
		return nil, &apiError{"UnknownOperationException", "UnknownOperation", 404,
			"operation " + op + " is not supported by the test bed's CloudWatch (GetMetricData and ListMetrics are)"}
	}
}

func readInput(r *http.Request) (cbor.Map, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxRequestBytes {
		return nil, errors.New("request body too large")
	}
	if len(body) == 0 {
		return cbor.Map{}, nil
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("decode CBOR body: %w", err)
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return nil, fmt.Errorf("the body is a %T, not a CBOR map", v)
	}
	return m, nil
}

func writeError(w http.ResponseWriter, err error) {
	ae := asServiceError(err)
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set(protocolHeader, protocolName)
	w.Header().Set("X-Amzn-Query-Error", ae.queryCode+";"+ae.fault())
	w.WriteHeader(ae.status)
	_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(errorNamespace + ae.shape), ae.messageMember(): cbor.String(ae.message)}))
}

func asServiceError(err error) *apiError {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{"InternalServiceFault", "InternalServiceError", 500, err.Error()}
	}
	return ae
}

func (e *apiError) fault() string {
	if e.status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// messageMember is the error structure's message member: the model spells InternalServiceFault's
// with a capital.
func (e *apiError) messageMember() string {
	if e.shape == "InternalServiceFault" {
		return "Message"
	}
	return "message"
}
