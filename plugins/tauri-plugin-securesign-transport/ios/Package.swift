// swift-tools-version:5.3
// Never built on this project's CI (no Xcode there): see ../README.md.

import PackageDescription

let package = Package(
  name: "tauri-plugin-securesign-transport",
  platforms: [
    .iOS(.v14)
  ],
  products: [
    .library(
      name: "tauri-plugin-securesign-transport",
      type: .static,
      targets: ["tauri-plugin-securesign-transport"])
  ],
  dependencies: [
    .package(name: "Tauri", path: "../.tauri/tauri-api")
  ],
  targets: [
    .target(
      name: "tauri-plugin-securesign-transport",
      dependencies: [
        .byName(name: "Tauri")
      ],
      path: "Sources")
  ]
)
