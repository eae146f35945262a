import { defineConfig } from "vite";

// The app is served by the API (StaticFiles at "/"), so assets use absolute paths under /assets/.
export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // The splat renderer (three + spark, with its WASM inlined) is loaded only on the scene page.
    chunkSizeWarningLimit: 4096,
  },
  server: {
    // `npm run dev` proxies the API to a local `vidscene serve`.
    proxy: {
      "/user": "http://127.0.0.1:5000",
      "/health": "http://127.0.0.1:5000",
      "/routes": "http://127.0.0.1:5000",
    },
  },
});
