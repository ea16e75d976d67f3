// cloudtik-jupyter: a side panel with every cluster on this machine (made from a notebook, the CLI or
// Python), live, with scale / down / live view / connect snippet, and a "new cluster" form.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { CloudtikApi } from './api';
import { ICardActions } from './card';
import { ClusterPanel } from './panel';

const CLOUD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161"
 d="M19.35 10.04A7.49 7.49 0 0 0 12 4C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0
 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96z"/></svg>`;

export const cloudIcon = new LabIcon({ name: 'cloudtik-jupyter:cloud', svgstr: CLOUD_SVG });

function snippet(name: string): string {
  return `from cloudtik_jupyter.api import Cluster\n\ncluster = Cluster(${JSON.stringify(name)})\n`;
}

function actions(api: CloudtikApi, notebooks: INotebookTracker | null): ICardActions {
  return {
    async scale(name, workers) {
      await api.scale(name, workers);
    },
    async down(name) {
      const answer = await showDialog({
        title: `Take down ${name}?`,
        body: 'Every node of the cluster is terminated and its local record removed.',
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Down' })]
      });
      if (answer.button.accept) {
        const { terminated } = await api.down(name);
        Notification.success(`${name} is down (${terminated} nodes terminated)`, { autoClose: 3000 });
      }
    },
    async liveView(name) {
      const panel = notebooks?.currentWidget;
      if (!panel) {
        throw new Error('open a notebook first: the live view goes into the current notebook');
      }
      // A notebook just opened may still be loading its cells and starting its kernel: an edit made
      // before it has loaded is overwritten, a cell run before the kernel answers is lost.
      const session = panel.sessionContext;
      await panel.context.ready;
      await session.ready;
      await session.session?.kernel?.info;
      const notebook = panel.content;
      const active = notebook.activeCell;
      if (!active || active.model.type !== 'code' || active.model.sharedModel.getSource().trim()) {
        NotebookActions.insertBelow(notebook); // keep the user's cell; an empty one is reused
      }
      notebook.activeCell?.model.sharedModel.setSource(`%load_ext cloudtik_jupyter\n%cloudtik status ${name}`);
      if (!(await NotebookActions.run(notebook, session))) {
        throw new Error('the live view cell did not run (is the kernel busy or dead?)');
      }
    },
    copySnippet(name) {
      Clipboard.copyToSystem(snippet(name));
      Notification.info('Connect snippet copied', { autoClose: 2000 });
    },
    openHeadPort(name, port) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        Notification.error(`not a port: ${port}`, { autoClose: 3000 });
        return;
      }
      window.open(`${api.url('proxy', name, String(port))}/`, '_blank', 'noopener');
    }
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'cloudtik-jupyter:panel',
  description: 'Every cloudtik cluster on this machine, live, in the left side bar.',
  autoStart: true,
  optional: [ILayoutRestorer, INotebookTracker],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, notebooks: INotebookTracker | null) => {
    const api = new CloudtikApi();
    const panel = new ClusterPanel(api, actions(api, notebooks));
    panel.title.icon = cloudIcon;
    panel.title.caption = 'Clusters (cloudtik)';
    app.shell.add(panel, 'left', { rank: 400 });
    restorer?.add(panel, 'cloudtik-panel');
  }
};

export default plugin;
