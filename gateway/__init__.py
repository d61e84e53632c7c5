"""The data-sharing gateway: a purpose-bound GraphQL gateway over agencies' databases.

The service is laid out in rooms along a request's path, each importing only the
rooms below it (a test checks the direction):

```
cli/          the `gateway` command
web/          the FastAPI application: GraphQL over HTTP, routes, middleware, query page
state.py      what the running application holds; resources.py: what it loads at start
admission/    request tokens, the client registry, sign-in, replay, rate limits
records/      recording, consents, search, the citizen's view, forgetting, figures, audit
log/          the verifiable log: a pure core (Merkle, proofs, checkpoints, tiles,
              leaves, receipts, offline checks) and its store and sequencer
storage/      engines, migrations, tables
errors.py, identifiers.py, instants.py, configfiles.py, config.py, logconfig.py
              leaf modules every package may use
```

Below them all sit the other packages: `schema` (canonical types and resolvers),
`connectors`, `policies` and `keys`. They may use the leaf modules of this package,
never a room. Importing `gateway` itself loads nothing but this docstring, so that a
leaf module or the log's offline checks cost only what they need.
"""

__all__: list[str] = []
