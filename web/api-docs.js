// Starts Swagger UI (served from /schema-assets, never a CDN) on the app's OpenAPI JSON: /schema.
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
});
