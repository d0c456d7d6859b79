# The node image: nothing but the server component. runwasi's wasmtime shim runs the
# ENTRYPOINT as a WASI command component; there is no OS layer to ship or patch.
#   cargo build --release --target wasm32-wasip2 -p spin-visits-server
#   buildah bud --platform wasi/wasm -t <registry>/spin-visits:0.1.0 .   (or docker buildx)
FROM scratch
COPY target/wasm32-wasip2/release/spin-visits-server.wasm /spin-visits-server.wasm
ENTRYPOINT ["/spin-visits-server.wasm"]
