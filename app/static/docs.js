// Starts Swagger UI on /docs (app/docs.py).  A file, not an inline script: the page's CSP forbids
// inline script.  The bundle (window.SwaggerUIBundle) is served by this server, never a CDN; the
// OpenAPI document's URL comes from a data-* attribute on <body>.
"use strict";

window.ui = window.SwaggerUIBundle({
  url: document.body.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  persistAuthorization: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
