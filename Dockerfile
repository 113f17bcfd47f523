# The sisnotify binary in a small image. Build: docker build -t sisnotify .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sisnotify ./cmd/sisnotify

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sisnotify /usr/local/bin/sisnotify
WORKDIR /var/lib/sisnotify
ENTRYPOINT ["/usr/local/bin/sisnotify"]
CMD ["serve"]
