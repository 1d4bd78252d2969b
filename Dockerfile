# meshcar's container image: the sidecar (and the CA: `meshcar ca serve`), built in two stages.
# Build: every dependency (npm ci), tsc → dist/ and the command's bundle (npm run build). Runtime: a slim Node 20, production
# dependencies and dist/ only, a non-root user, `meshcar` as the entrypoint. Nothing secret is
# copied in (.dockerignore keeps certs/ and every key out): identities come at run time from
# the CA with a join token, or from mounted files. `make image` builds it with docker or podman.
# test/deploy/image.test.ts checks, without a container engine, that every file copied here
# exists after `make build` and that the entrypoint runs from a production-only install.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm run -s bundle

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
RUN ln -s /app/dist/cli.js /usr/local/bin/meshcar
# the image's own non-root user (uid 1000); the Kubernetes manifests run as this uid
USER 1000:1000
# inbound (mutual TLS) and admin (/metrics, /ready, /healthz). Not the outbound (15001): it
# calls upstreams as this sidecar's identity for whoever connects, so it is for the app beside
# it over loopback only, and `docker run -P` publishes every port named here
EXPOSE 15443 15000
ENTRYPOINT ["meshcar"]
CMD ["--help"]
