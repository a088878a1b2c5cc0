// Worker build of @aws-sdk/xml-builder: the SDK's browser build parses XML with DOMParser, which workerd
// lacks (aws-sdk-js-v3 #7375), so wrangler.toml aliases the package to this file, which uses the SDK's
// own pure-JS parser instead.
export { XmlNode } from "../../../node_modules/@aws-sdk/xml-builder/dist-es/XmlNode.js";
export { XmlText } from "../../../node_modules/@aws-sdk/xml-builder/dist-es/XmlText.js";
export { parseXML } from "../../../node_modules/@aws-sdk/xml-builder/dist-es/xml-parser.js";
