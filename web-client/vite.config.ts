import { defineConfig } from "vite";

// Built into dist/, which the gateway serves at http://localhost:8080/.
// In `npm run dev`, /config.json comes from a running gateway.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true },
  server: { proxy: { "/config.json": "http://127.0.0.1:8080" } },
});
