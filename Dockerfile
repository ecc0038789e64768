# meds-fhir server image, for running against MongoDB (see docker-compose.yml).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY app ./app
COPY scripts/build-app.mjs ./scripts/
RUN npx tsc -p tsconfig.build.json && node scripts/build-app.mjs && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PORT=8080
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY profiles ./profiles
COPY examples ./examples
COPY terminology ./terminology
COPY checks ./checks
# Shipped at start-up like the checks: the population measures and the SQL-on-FHIR views.
COPY measures ./measures
COPY views ./views
COPY scripts/server-node-flags.mjs ./scripts/
EXPOSE 8080
USER node
# The heap settings npm start gives the server (scripts/server-node-flags.mjs); NODE_OPTIONS may set its own.
CMD ["sh", "-c", "exec node $(node scripts/server-node-flags.mjs) dist/server.js"]
