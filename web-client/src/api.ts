// The API reference at /api: Swagger UI (bundled here, so no request leaves
// the shop) over the gateway's /openapi.json. "Try it out" calls the real
// services, as the signed-in user of the web app when there is one: their
// access token rides on every call that does not carry its own.
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";
import { browserStore } from "./lib/session";

interface Request {
  headers: Record<string, string>;
}

const signedIn = browserStore();

SwaggerUI({
  url: "/openapi.json",
  dom_id: "#reference",
  deepLinking: true,
  tryItOutEnabled: false,
  // No outside validator badge (it would call validator.swagger.io).
  validatorUrl: null,
  requestInterceptor: (request: Request) => {
    const tokens = signedIn.load();
    const asked = Object.keys(request.headers).some((name) => name.toLowerCase() === "authorization");
    if (tokens && !asked) {
      request.headers.Authorization = `Bearer ${tokens.accessToken}`;
    }
    return request;
  },
});
