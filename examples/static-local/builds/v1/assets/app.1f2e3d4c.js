document.title += " (app 1f2e3d4c)";
