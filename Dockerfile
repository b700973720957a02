# The rollgate worker (and the starter CLI), as a static binary on a distroless base, run as a
# non-root user.
#
#   docker build -t rollgate-worker .
#   docker run --rm -e TEMPORAL_ADDRESS=... -e VAULT_ADDR=... -p 9090:9090 rollgate-worker

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go build -ldflags="-s -w" -o /out/rollgate-worker ./worker \
 && go build -ldflags="-s -w" -o /out/rollgate-starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rollgate-worker /out/rollgate-starter /usr/local/bin/
# distroless's nonroot user (uid 65532); nothing in the image runs as root.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/rollgate-worker"]
