// Query page of the gateway. Every asset is served by the gateway itself: the page
// must work on closed government networks, with no CDN.
(function () {
  "use strict";
  var body = document.body;
  var endpoint = body.dataset.endpoint;
  var accept = "application/graphql-response+json, application/json;q=0.9";

  // In the demo, each request is signed for the purpose chosen above the editor by
  // the gateway's loopback-only UnsafeDemoTokens route; the token covers the exact body.
  // The route wants this start's secret, which `gateway demo` prints in the page's
  // address after "#demo=": a fragment is never sent to a server. It is kept for this
  // tab only (a reload keeps working) and taken out of the address bar.
  var demoSecret = (function () {
    var found = /(?:^#|&)demo=([A-Za-z0-9_-]+)/.exec(window.location.hash);
    try {
      if (found) {
        window.sessionStorage.setItem("gateway-demo-secret", found[1]);
      }
      var kept = window.sessionStorage.getItem("gateway-demo-secret");
      if (found) {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
      }
      return kept || "";
    } catch (e) {
      return found ? found[1] : "";
    }
  })();
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
      headers: { "Content-Type": "application/json", "X-Demo-Secret": demoSecret },
      body: JSON.stringify(ask),
    });
    var answered = await signed.json();
    if (!signed.ok) {
      // Shown in the result pane, as GraphQL errors are.
      return { errors: [{ message: answered.message, extensions: { code: answered.code } }] };
    }
    var token = answered.token;
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
