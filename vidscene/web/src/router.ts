// Hash routing: the server only has to serve index.html at "/", and reloads or shared links keep working
// without a catch-all route on the API.

import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "login" }
  | { name: "register" }
  | { name: "scenes" }
  | { name: "new" }
  | { name: "account" }
  | { name: "scene"; id: string }
  | { name: "notFound" };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  if (path === "/" || path === "/scenes") return { name: "scenes" };
  if (path === "/login") return { name: "login" };
  if (path === "/register") return { name: "register" };
  if (path === "/new") return { name: "new" };
  if (path === "/account") return { name: "account" };
  const m = /^\/scene\/([^/]+)$/.exec(path);
  if (m?.[1]) {
    try {
      return { name: "scene", id: decodeURIComponent(m[1]) };
    } catch {
      return { name: "notFound" };
    }
  }
  return { name: "notFound" };
}

export function href(route: Route): string {
  switch (route.name) {
    case "scene":
      return `#/scene/${encodeURIComponent(route.id)}`;
    case "scenes":
      return "#/";
    case "notFound":
      return "#/";
    default:
      return `#/${route.name}`;
  }
}

export function navigate(route: Route, replace = false): void {
  const target = href(route);
  if (replace) {
    window.history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = target;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
