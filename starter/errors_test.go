package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"
)

// The hint to set the codec keys follows the converter's own error through the starter's
// wrapping, and only that error: a message that merely quotes its text gets no hint.
func TestErrorMessage_HintsAtTheCodecKeysOnlyForASealedPayload(t *testing.T) {
	const hint = "set ROLLGATE_CODEC_KEY"
	// As the SDK wraps it while decoding a result, and the starter then wraps the root cause.
	sdk := fmt.Errorf("payload item 0: %w", fmt.Errorf("encoding binary/encrypted: %w", converter.ErrEncodingIsNotSupported))
	sealed := fmt.Errorf("deployment deploy/abcdefghij/prod ended without a result: %w", rootCause(sdk))
	if got := errorMessage(sealed); !strings.HasPrefix(got, sealed.Error()) || !strings.Contains(got, hint) {
		t.Errorf("sealed payload: %q", got)
	}
	if got := errorMessage(&codeError{exitError, sealed}); !strings.Contains(got, hint) {
		t.Errorf("sealed payload behind an exit code: %q", got)
	}
	quoted := errors.New("rollback of abcdefghij/prod: webhook said: payload encoding is not supported")
	if got := errorMessage(quoted); got != quoted.Error() {
		t.Errorf("a message quoting the text: %q", got)
	}
	if got := errorMessage(&codeError{exitInvalid, errors.New("--runs 0: allowed 1 to 1000")}); got != "--runs 0: allowed 1 to 1000" {
		t.Errorf("plain error: %q", got)
	}
}

// rootCause keeps the innermost error itself, so a caller wrapping it with %w can still
// recognise it by type, and prints as it always did.
func TestRootCause_IsTheInnermostErrorAndKeepsItsType(t *testing.T) {
	inner := serviceerror.NewNotFound("workflow not found for ID: deploy/abcdefghij/prod")
	err := &codeError{exitError, fmt.Errorf("outer: %w", fmt.Errorf("middle: %w", inner))}
	got := rootCause(err)
	var nf *serviceerror.NotFound
	if got.Error() != inner.Error() || !errors.As(fmt.Errorf("x: %w", got), &nf) || nf != inner {
		t.Fatalf("rootCause = %v", got)
	}
}
