// Query page of the gateway. Every asset is served by the gateway itself: the page
// must work on closed government networks, with no CDN.
(function () {
  "use strict";
  var body = document.body;
  var endpoint = body.dataset.endpoint;
  var accept = "application/graphql-response+json, application/json;q=0.9";

  // In the demo, each request is signed for the purpose chosen above the editor by
  // the gateway's loopback-only UnsafeDemoTokens route; the token covers the exact body.
  function purpose() {
    var form = document.getElementById("purpose");
    var subjects = form.subjects.value.split(/[\s,]+/).filter(Boolean);
    return {
      procedure: form.procedure.value,
      case: form.case.value,
      officer: form.officer.value,
      subjects: subjects.length ? subjects : null,
    };
  }

  async function signedFetcher(params) {
    var text = JSON.stringify(params);
    var ask = Object.assign({ body: text }, purpose());
    var signed = await fetch("/_unsafe/demo-tokens", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(ask),
    });
    var token = (await signed.json()).token;
    var answer = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: accept, Authorization: "Bearer " + token },
      body: text,
    });
    return answer.json();
  }

  var fetcher =
    body.dataset.demoTokens === "true"
      ? signedFetcher
      : GraphiQL.createFetcher({ url: endpoint, headers: { Accept: accept } });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: body.dataset.defaultQuery || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
