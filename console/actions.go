package console

// actionRoutes registers the office's actions.
func (h *Handler) actionRoutes() {}
