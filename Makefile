# Shortcuts; the README's two commands need only Go and Node.js.
.PHONY: demo smoke test tools bed fuzz bench vet authorizer

demo:
	go run ./testsuite/cmd/demo

smoke:
	go run ./testsuite/cmd/bed -smoke

test:
	go test -race -count=1 -timeout 60m ./...

tools:
	go run ./testsuite/cmd/bed -install
	.ci/install-nginx
	.ci/install-prometheus

bed:
	go run ./testsuite/cmd/bed

# The authorizer's Lambda bootstrap (provided.al2023), one per architecture, and its deployment
# package named by Lambda's name for the architecture (arm64.zip, x86_64.zip), as
# deploy/authorizer.yaml expects.
AUTHORIZER_OUT ?= bin/authorizer
authorizer:
	for arch in amd64:x86_64 arm64:arm64; do \
		goarch=$${arch%%:*}; lambda=$${arch##*:}; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$goarch go build -tags lambda.norpc -trimpath -o $(AUTHORIZER_OUT)/$$goarch/bootstrap ./authorizer || exit 1; \
		go run ./deploy/lambdazip -o $(AUTHORIZER_OUT)/$$lambda.zip $(AUTHORIZER_OUT)/$$goarch/bootstrap || exit 1; \
	done

fuzz:
	go test -run '^$$' -fuzz FuzzVerify_AcceptsOnlyTheTokenThatWasSigned -fuzztime 120000x ./internal/tokens
	go test -run '^$$' -fuzz FuzzJWKS_NeverPanicsOrTrustsAForeignKey -fuzztime 240000x ./internal/tokens
	go test -run '^$$' -fuzz FuzzStrictJSON_AgreesWithEncodingJSON -fuzztime 160000x ./internal/tokens
	go test -run '^$$' -fuzz FuzzControlPlane_NeverFailsWith5xx -fuzztime 400000x ./testsuite/gatewayemu
	go test -run '^$$' -fuzz FuzzParse_NeverPanicsOrAcceptsAnInvalidSpec -fuzztime 50000x ./internal/spec
	go test -run '^$$' -fuzz FuzzCheckAnalysis_CustomQueryNeverPanicsAndRendersBounded -fuzztime 50000x ./internal/spec
	go test -run '^$$' -fuzz FuzzHandleEvent_NeverPanicsNorAllowsGarbage -fuzztime 200000x ./authorizer

bench:
	go test -run '^$$' -bench WarmStart -benchtime 5x ./testsuite/
	go test -run '^$$' -bench Verify -benchtime 3s ./internal/registry
	go test -run '^$$' -bench MintThroughVault -benchtime 2s ./internal/tokens
	go test -run '^$$' -bench Revocation -benchtime 1x -timeout 15m ./internal/registry
	go test -run '^$$' -bench RollbackLatency -benchtime 1x -timeout 20m ./testsuite
	go test -run '^$$' -bench Payload -benchmem -count 3 ./internal/codec
	go test -run '^$$' -bench ServeThroughput -benchtime 1x ./authorizer

vet:
	gofmt -l . && go vet ./...
