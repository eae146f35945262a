// The login session: the JWT lives in localStorage so a reload or a new tab stays logged in, and every tab
// follows a log in or log out made in another.

const TOKEN_KEY = "vidscene.token";
const USERNAME_KEY = "vidscene.username";

type SessionListener = () => void;
const listeners = new Set<SessionListener>();

function readStorage(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage disabled (private mode): the session lasts as long as the page
  }
}

let memoryToken: string | null = readStorage(TOKEN_KEY);
let memoryUsername: string | null = readStorage(USERNAME_KEY);
// Why the last session ended when the user did not log out here; the login page shows it once.
let endReason: string | null = null;

export const session = {
  get token(): string | null {
    return memoryToken;
  },
  get username(): string | null {
    return memoryUsername;
  },
  /** Why the user was logged out (a session the server ended, a log out in another tab), or null. */
  get endReason(): string | null {
    return endReason;
  },
  set(token: string, username: string): void {
    memoryToken = token;
    memoryUsername = username;
    endReason = null;
    try {
      window.localStorage.setItem(TOKEN_KEY, token);
      window.localStorage.setItem(USERNAME_KEY, username);
    } catch {
      /* keep the in-memory copy */
    }
    listeners.forEach((fn) => fn());
  },
  /** Logs out: the user asked to, or (with a reason the login page shows) the session ended otherwise. */
  clear(reason: string | null = null): void {
    memoryToken = null;
    memoryUsername = null;
    endReason = reason;
    try {
      window.localStorage.removeItem(TOKEN_KEY);
      window.localStorage.removeItem(USERNAME_KEY);
    } catch {
      /* nothing stored */
    }
    listeners.forEach((fn) => fn());
  },
  subscribe(fn: SessionListener): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

// Another tab logging in or out changes localStorage; follow it so tabs never disagree about the user.
window.addEventListener("storage", (event) => {
  if (event.key !== TOKEN_KEY && event.key !== USERNAME_KEY && event.key !== null) return;
  const hadToken = memoryToken !== null;
  memoryToken = readStorage(TOKEN_KEY);
  memoryUsername = readStorage(USERNAME_KEY);
  if (hadToken && memoryToken === null) endReason = "You logged out in another tab.";
  listeners.forEach((fn) => fn());
});

/**
 * The login page's explanation of a 401 on a request made with a token: the server no longer accepts the
 * session (a password changed or an account deleted elsewhere revokes every token; tokens also expire).
 */
export function sessionEndedReason(serverMessage: string): string {
  return (
    `You were logged out: the server no longer accepts this session (“${serverMessage}”). This happens when ` +
    "the password is changed elsewhere or the session expires. Log in to carry on where you were."
  );
}
