/**
 * Imported first by dns-name.test.ts: makes grpc-js ask the DNS server that a
 * "dns://SERVER/NAME:PORT" target names (its default resolver, getaddrinfo,
 * ignores it). grpc-js reads the variable once, when it loads.
 */
process.env["GRPC_NODE_USE_ALTERNATIVE_RESOLVER"] = "true";
