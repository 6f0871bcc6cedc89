import { defineConfig } from "vite";

// Built into dist/ (or, from the gateway's build script, into the folder
// SHOP_WEB_OUT_DIR names, which the gateway binary embeds).
// In `npm run dev`, /config.json comes from a running gateway.
export default defineConfig({
  build: { outDir: process.env.SHOP_WEB_OUT_DIR ?? "dist", emptyOutDir: true },
  server: { proxy: { "/config.json": "http://127.0.0.1:8080" } },
});
