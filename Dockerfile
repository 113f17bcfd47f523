# The sisnotify binary in a small image. Build: docker build -t sisnotify .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sisnotify ./cmd/sisnotify \
 && mkdir -p /out/data/outbox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sisnotify /usr/local/bin/sisnotify
# The outbox (and a volume mounted on it) must be writable by the nonroot user.
COPY --from=build --chown=65532:65532 /out/data /var/lib/sisnotify
WORKDIR /var/lib/sisnotify
ENTRYPOINT ["/usr/local/bin/sisnotify"]
CMD ["serve"]
