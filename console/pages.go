package console

// pageRoutes registers the pages.
func (h *Handler) pageRoutes() {}
