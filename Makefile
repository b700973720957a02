# Shortcuts; the README's two commands need only Go and Node.js.
.PHONY: demo test tools bed fuzz bench vet

demo:
	go run ./testsuite/cmd/bed -smoke

test:
	go test -race -timeout 60m ./...

tools:
	go run ./testsuite/cmd/bed -install

bed:
	go run ./testsuite/cmd/bed

fuzz:
	go test -run '^$$' -fuzz FuzzControlPlane -fuzztime 60s -fuzzminimizetime 10s ./testsuite/gatewayemu

bench:
	go test -run '^$$' -bench . -benchtime 5x ./testsuite/

vet:
	gofmt -l . && go vet ./...
