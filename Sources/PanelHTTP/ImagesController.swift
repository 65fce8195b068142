import HTTPServer
import PanelCore

/// `/images`: what this host boots. Guests name an image id; the API never takes a host path.
struct ImagesController: Sendable {
    let images: ImageCatalog

    func addRoutes(to api: RouteGroup) {
        api.get("/images", summary: "Bootable images this host offers", doc: .init(answer: Items<ImageCatalog.Image>.self)) { _ in
            .json(Items(items: images.images))
        }
    }
}
