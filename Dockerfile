# Coffer container image: a release build with the Swift standard library linked
# statically, on a slim non-root runtime.
#
#   docker build -t coffer:0.1.0 .
#   docker run --rm -e ENCRYPTION_TYPE=rsa -e ENCRYPTION_RSA_PRIVATE_KEY=... -e DATABASE_URL=... coffer:0.1.0 serve
ARG SWIFT_IMAGE=swift:6.3-noble
ARG RUNTIME_IMAGE=ubuntu:24.04

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# Resolve dependencies first so they are cached between source changes.
COPY Package.swift ./
RUN swift package resolve
COPY . .
RUN swift build -c release --static-swift-stdlib --product coffer \
 && install -D "$(swift build -c release --show-bin-path)/coffer" /out/coffer \
 && strip /out/coffer

FROM ${RUNTIME_IMAGE}
# CA certificates for KMS/STS over HTTPS and PostgreSQL with sslmode=verify-full.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 coffer \
 && useradd --system --uid 10001 --gid coffer --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin coffer
COPY --from=build /out/coffer /usr/local/bin/coffer
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/coffer"]
CMD ["serve"]
