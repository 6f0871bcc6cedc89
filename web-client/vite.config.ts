import { resolve } from "node:path";
import { defineConfig } from "vite";

// Built into dist/ (or, from the gateway's build script, into the folder
// SHOP_WEB_OUT_DIR names, which the gateway binary embeds): the app
// (index.html) and the API reference (api/index.html, served at /api).
// In `npm run dev`, /config.json and /openapi.json come from a running
// gateway.
export default defineConfig({
  build: {
    outDir: process.env.SHOP_WEB_OUT_DIR ?? "dist",
    emptyOutDir: true,
    // Swagger UI is one 1.5 MB module, loaded by /api only.
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      input: {
        app: resolve(import.meta.dirname, "index.html"),
        api: resolve(import.meta.dirname, "api/index.html"),
      },
    },
  },
  server: {
    proxy: {
      "/config.json": "http://127.0.0.1:8080",
      "/openapi.json": "http://127.0.0.1:8080",
    },
  },
});
