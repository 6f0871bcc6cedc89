// The signed-in session: tokens kept in the browser, put on every call, and
// refreshed silently once when a call says the access token is no longer
// good. If the refresh fails too, the session ends and the call's
// `unauthenticated` reaches the page, which asks to log in.

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** Where tokens live (localStorage in the app, a Map in tests). */
export interface TokenStore {
  load(): Tokens | undefined;
  save(tokens: Tokens | undefined): void;
}

/** Trades a refresh token for a new pair (the users service's Refresh). */
export type Refresher = (refreshToken: string) => Promise<Tokens>;

export class Session {
  private refreshing: Promise<Tokens | undefined> | undefined;

  constructor(
    private readonly store: TokenStore,
    private readonly refresher: Refresher,
  ) {}

  get tokens(): Tokens | undefined {
    return this.store.load();
  }

  get signedIn(): boolean {
    return this.tokens !== undefined;
  }

  start(tokens: Tokens): void {
    this.store.save(tokens);
  }

  end(): void {
    this.store.save(undefined);
  }

  /** One refresh at a time: calls failing together share it. */
  refresh(): Promise<Tokens | undefined> {
    const current = this.tokens;
    if (!current) {
      return Promise.resolve(undefined);
    }
    this.refreshing ??= this.refresher(current.refreshToken)
      .then((fresh) => {
        this.store.save(fresh);
        return fresh;
      })
      .catch(() => {
        this.end();
        return undefined;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** Adds the bearer token; on `unauthenticated`, refreshes once and retries once. */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      const sent = this.tokens?.accessToken;
      if (sent) {
        req.header.set("Authorization", `Bearer ${sent}`);
      }
      try {
        return await next(req);
      } catch (error) {
        const unauthenticated = ConnectError.from(error).code === Code.Unauthenticated;
        if (!sent || !unauthenticated || req.stream) {
          throw error;
        }
        const fresh = this.tokens?.accessToken !== sent ? this.tokens : await this.refresh();
        if (!fresh) {
          throw error;
        }
        req.header.set("Authorization", `Bearer ${fresh.accessToken}`);
        return await next(req);
      }
    };
  }
}

/** Tokens in localStorage. */
export const browserStore = (key = "connect-shop.session"): TokenStore => ({
  load() {
    try {
      const value = JSON.parse(localStorage.getItem(key) ?? "null");
      return typeof value?.accessToken === "string" && typeof value?.refreshToken === "string"
        ? { accessToken: value.accessToken, refreshToken: value.refreshToken }
        : undefined;
    } catch {
      return undefined;
    }
  },
  save(tokens) {
    if (tokens) {
      localStorage.setItem(key, JSON.stringify(tokens));
    } else {
      localStorage.removeItem(key);
    }
  },
});
