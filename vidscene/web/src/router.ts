// Hash routing: the server only has to serve index.html at "/", and reloads or shared links keep working
// without a catch-all route on the API.

import { useEffect, useState } from "preact/hooks";

export type Route =
  // `next`: the path (as in the hash, "/scene/abc") to open once logged in, e.g. a shared link to a scene.
  | { name: "login"; next?: string }
  | { name: "register"; next?: string }
  | { name: "accountDeleted" }
  | { name: "scenes" }
  | { name: "new" }
  | { name: "account" }
  | { name: "scene"; id: string }
  | { name: "notFound" };

/** Where a `next` path leads, or null unless it is a page of the logged-in app (never back to a login page). */
export function afterLogin(next: string | undefined): Route | null {
  if (!next?.startsWith("/")) return null;
  const route = parseRoute(`#${next}`);
  return ["login", "register", "accountDeleted", "notFound"].includes(route.name) ? null : route;
}

/** The route's path as `next` keeps it ("/scene/abc"). */
export function pathOf(route: Route): string {
  return href(route).replace(/^#/, "");
}

export function parseRoute(hash: string): Route {
  const [path = "/", query = ""] = (hash.replace(/^#/, "") || "/").split("?", 2);
  if (path === "/" || path === "/scenes") return { name: "scenes" };
  if (path === "/login" || path === "/register") {
    const next = new URLSearchParams(query).get("next") ?? undefined;
    return next ? { name: path === "/login" ? "login" : "register", next } : { name: path === "/login" ? "login" : "register" };
  }
  if (path === "/account-deleted") return { name: "accountDeleted" };
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
    case "login":
    case "register":
      return route.next ? `#/${route.name}?next=${encodeURIComponent(route.next)}` : `#/${route.name}`;
    case "accountDeleted":
      return "#/account-deleted";
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
