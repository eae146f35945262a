import "./styles.css";

import type { JSX } from "preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { sceneOptions } from "./api/options";
import { session } from "./api/session";
import { AccountDeletedPage, AccountPage } from "./pages/Account";
import { AuthPage } from "./pages/Auth";
import { ScenePage } from "./pages/Scene";
import { ScenesPage } from "./pages/Scenes";
import { SharePage, shareTokenOf } from "./pages/Share";
import { UploadBanner, UploadPage } from "./pages/Upload";
import type { Route } from "./router";
import { afterLogin, href, navigate, pathOf, useRoute } from "./router";

/** Re-renders on every session change (log in, log out, username change, another tab). */
function useLoggedIn(): boolean {
  const [snapshot, setSnapshot] = useState({ token: session.token, username: session.username });
  useEffect(() => session.subscribe(() => setSnapshot({ token: session.token, username: session.username })), []);
  return snapshot.token !== null;
}

function Header({ loggedIn, route }: { loggedIn: boolean; route: Route }): JSX.Element {
  const current = (name: Route["name"]): "page" | undefined => (route.name === name ? "page" : undefined);
  return (
    <header class="topbar">
      <a class="brand" href={loggedIn ? "#/" : "#/login"}>
        <img src="/favicon.svg" alt="" width={28} height={28} />
        <span>vidscene</span>
      </a>
      <nav aria-label="Main">
        {loggedIn ? (
          <ul>
            <li>
              <a href="#/" aria-current={current("scenes")}>Scenes</a>
            </li>
            <li>
              <a href="#/new" aria-current={current("new")}>New scene</a>
            </li>
            <li>
              <a href="#/account" aria-current={current("account")}>
                Account<span class="visually-hidden"> ({session.username})</span>
              </a>
            </li>
            <li>
              <button
                type="button"
                class="link"
                onClick={() => {
                  session.clear();
                  navigate({ name: "login" }, true);
                }}
              >
                Log out
              </button>
            </li>
          </ul>
        ) : (
          <ul>
            <li>
              <a href="#/login" aria-current={current("login")}>Log in</a>
            </li>
            <li>
              <a href="#/register" aria-current={current("register")}>Register</a>
            </li>
          </ul>
        )}
      </nav>
    </header>
  );
}

function Page({ route, loggedIn }: { route: Route; loggedIn: boolean }): JSX.Element | null {
  if (!loggedIn) {
    if (route.name === "accountDeleted") return <AccountDeletedPage />;
    const next = route.name === "login" || route.name === "register" ? route.next : undefined;
    return route.name === "register" ? (
      <AuthPage mode="register" key="register" next={next} />
    ) : (
      <AuthPage mode="login" key="login" next={next} />
    );
  }
  switch (route.name) {
    case "new":
      return <UploadPage />;
    case "account":
      return <AccountPage />;
    case "scene":
      return <ScenePage id={route.id} key={route.id} />;
    default:
      return <ScenesPage />;
  }
}

function App(): JSX.Element {
  const route = useRoute();
  const loggedIn = useLoggedIn();

  // Keep the address bar honest: logged-out users sit on #/login, logged-in users never see the auth pages. The
  // page a logged-out user asked for (a shared link, or the one open when the session ended) rides along as
  // `next` and opens after login.
  useEffect(() => {
    const authPage = route.name === "login" || route.name === "register";
    if (!loggedIn && !authPage && route.name !== "accountDeleted") {
      const wanted = route.name === "scenes" || route.name === "notFound" ? undefined : pathOf(route);
      navigate({ name: "login", next: wanted }, true);
    }
    if (loggedIn && (authPage || route.name === "notFound" || route.name === "accountDeleted")) {
      navigate((authPage ? afterLogin(route.next) : null) ?? { name: "scenes" }, true);
    }
  }, [loggedIn, route.name, href(route)]);

  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <Header loggedIn={loggedIn} route={route} />
      <main id="main" tabIndex={-1}>
        {loggedIn && <UploadBanner onForm={route.name === "new"} />}
        <Page route={route} loggedIn={loggedIn} />
      </main>
    </>
  );
}

// Every page but the scene list builds on the server's options: ask for them while the first page renders.
// A failure here is only logged by the browser; the page that needs them shows it and can try again.
sceneOptions().catch(() => undefined);

// A share page (/s/<token>) is a world of its own: no session, no account, only the shared scene.
const shareToken = shareTokenOf(window.location.pathname);
const embed = new URLSearchParams(window.location.search).get("embed") === "1";
if (shareToken !== null && embed) document.documentElement.classList.add("embedded");
const root = document.getElementById("app");
if (root) render(shareToken !== null ? <SharePage token={shareToken} embed={embed} /> : <App />, root);
