// Renders the client API's OpenAPI document (api/client.yaml, served by ECB
// at /v1/openapi.yaml) with Swagger UI, all from this origin: the spec is
// read relative to this page, and the online validator badge is off (it
// would send the spec's URL to a third party).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.yaml", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
