// Query page of the gateway. Every asset is served by the gateway itself: the page
// must work on closed government networks, with no CDN.
(function () {
  "use strict";
  var body = document.body;
  var fetcher = GraphiQL.createFetcher({
    url: body.dataset.endpoint,
    headers: { Accept: "application/graphql-response+json, application/json;q=0.9" },
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: body.dataset.defaultQuery || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
