"""``/user/scene/edits/{scene_id}``: crop and clean a finished gaussian scene without losing the original."""
