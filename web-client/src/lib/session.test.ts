import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { UserService } from "../../gen/shop/users/v1/users_pb.js";
import { Session, type TokenStore, type Tokens } from "./session.js";

function memoryStore(initial?: Tokens): TokenStore {
  let tokens = initial;
  return { load: () => tokens, save: (t) => (tokens = t) };
}

/** A users service (in memory, connect's router transport) that accepts only `valid`. */
function usersAccepting(valid: () => string) {
  const seen: string[] = [];
  const transport = (session: Session) =>
    createRouterTransport(
      ({ service }) => {
        service(UserService, {
          getMe(_req, ctx) {
            const auth = ctx.requestHeader.get("Authorization") ?? "";
            seen.push(auth);
            if (auth !== `Bearer ${valid()}`) {
              throw new ConnectError("token expired", Code.Unauthenticated);
            }
            return { user: { id: "u1", email: "ada@example.com", displayName: "Ada" } };
          },
        });
      },
      { transport: { interceptors: [session.interceptor()] } },
    );
  return { seen, transport };
}

describe("the session", () => {
  it("refreshes once, silently, and retries the call", async () => {
    let refreshes = 0;
    const session = new Session(memoryStore({ accessToken: "old", refreshToken: "r1" }), async (refresh) => {
      refreshes += 1;
      expect(refresh).toBe("r1");
      return { accessToken: "new", refreshToken: "r2" };
    });
    const users = usersAccepting(() => "new");
    const client = createClient(UserService, users.transport(session));
    const [a, b] = await Promise.all([client.getMe({}), client.getMe({})]);
    expect(a.user?.displayName).toBe("Ada");
    expect(b.user?.displayName).toBe("Ada");
    expect(refreshes).toBe(1);
    expect(session.tokens).toEqual({ accessToken: "new", refreshToken: "r2" });
  });

  it("ends the session when the refresh fails, and the call says unauthenticated", async () => {
    const session = new Session(memoryStore({ accessToken: "old", refreshToken: "spent" }), async () => {
      throw new ConnectError("refresh token already used", Code.Unauthenticated);
    });
    const client = createClient(UserService, usersAccepting(() => "never").transport(session));
    await expect(client.getMe({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(session.signedIn).toBe(false);
  });

  it("sends no token and never refreshes when signed out", async () => {
    const session = new Session(memoryStore(), async () => {
      throw new Error("must not refresh");
    });
    const users = usersAccepting(() => "x");
    const client = createClient(UserService, users.transport(session));
    await expect(client.getMe({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(users.seen).toEqual([""]);
  });
});
